"""The peer transport: listens, dials, authenticates, and moves envelopes.

Construct, then ``await start()``; ``await stop()`` closes everything. The
constructor does no I/O. Delivery is at most once and best effort, like the
network under it: a frame in flight when a link breaks may be lost, and
consensus and sync recover by their own timeouts and requests. What the
transport does promise:

- a frame reaches ``on_frame`` only from an authenticated, configured peer,
  for a hosted chain, of a known kind, within that kind's size limit;
- nothing from a peer can crash it: bad frames are logged with the peer,
  counted and dropped, and a peer that keeps sending them (or breaks the
  framing) is disconnected;
- memory per peer is bounded (send queue limits, one frame of read buffer,
  the TLS write buffer's high-water mark);
- a reliable frame is never dropped unseen: ``send`` returns False if the
  peer's queue is full (see outbox.py for the policy per kind).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import replace
from typing import Any

from chaincity.net.backoff import Backoff, RandomSource
from chaincity.net.config import BadFrame, TransportConfig
from chaincity.net.dedup import RecentDigests
from chaincity.net.frames import (
    HEADER_SIZE,
    BadEnvelope,
    Delivery,
    Envelope,
    FrameError,
    FrameTooLarge,
    Kind,
    KindSpec,
    decode_envelope,
    encode_frame,
)
from chaincity.net.link import Link
from chaincity.net.outbox import Outbox
from chaincity.net.peers import PeerDirectory, PeerRefused, PeerSpec, keeps_new_link
from chaincity.net.stats import PeerStats, TransportStats

log = logging.getLogger("chaincity.net")


class _NodeLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes every line with the local node, for processes hosting several."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['node'] if self.extra else '?'}] {msg}", kwargs


FrameHandler = Callable[[str, Envelope], None]

REFUSAL_LOG_INTERVAL_S = 10.0


class _PeerState:
    def __init__(self, spec: PeerSpec, config: TransportConfig, rng: RandomSource) -> None:
        self.spec = spec
        self.outbox = Outbox(config.reliable_queue, config.lossy_queue)
        self.stats = PeerStats()
        self.backoff = Backoff(config.backoff_initial_ms, config.backoff_max_ms, rng)
        self.link: Link | None = None
        self.up = asyncio.Event()
        self.down = asyncio.Event()
        self.down.set()
        self.up_since_s = 0.0
        self.flush_handle: asyncio.Handle | None = None
        self.refusals_unlogged = 0
        self.refusal_logged_s = -REFUSAL_LOG_INTERVAL_S


class Transport:
    def __init__(
        self,
        config: TransportConfig,
        peers: Mapping[str, PeerSpec],
        server_ssl: ssl.SSLContext,
        client_ssl: ssl.SSLContext,
        on_frame: FrameHandler,
        rng: RandomSource,
    ) -> None:
        self.config = config
        self._directory = PeerDirectory(config.node_name, peers)
        self._peers = {name: _PeerState(spec, config, rng) for name, spec in peers.items()}
        self._server_ssl = server_ssl
        self._client_ssl = client_ssl
        self._on_frame = on_frame
        self._kinds = dict(config.kinds)
        self._chains = frozenset(config.chains)
        self._dedup = RecentDigests(config.dedup_capacity)
        self._ping = encode_frame(Envelope(min(self._chains), Kind.PING, b""))
        self._links: set[Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: socket.socket | None = None
        self._ticker: asyncio.TimerHandle | None = None
        self._running = False
        self._handshakes_pending = 0
        self._pending_by_host: dict[str, int] = {}
        self.stats = TransportStats()
        self._log = _NodeLog(log, {"node": config.node_name})

    # lifecycle

    async def start(self) -> None:
        if self._running:
            raise RuntimeError("transport already started")
        loop = asyncio.get_running_loop()
        self._listener = _listen(self.config.host, self.config.port)
        self._running = True
        self._spawn(self._accept_loop())
        for state in self._peers.values():
            if state.spec.address is not None:
                self._spawn(self._dial_loop(state))
        self._ticker = loop.call_later(self.config.ping_interval_ms / 2000, self._tick)
        self._log.info("listening on %s:%d", *self.address)

    async def stop(self) -> None:
        self._running = False
        if self._ticker is not None:
            self._ticker.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self._stop_timeout_s)
        await self._close_links()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    async def _close_links(self) -> None:
        for link in list(self._links):
            link.close()
        deadline = asyncio.get_running_loop().time() + self._stop_timeout_s
        while self._links and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for link in list(self._links):
            link.abort()
        # Let connection_lost run for the aborted links.
        await asyncio.sleep(0)

    @property
    def _stop_timeout_s(self) -> float:
        return self.config.stop_timeout_ms / 1000

    @property
    def address(self) -> tuple[str, int]:
        """Where we listen (the real port when config.port was 0)."""
        if self._listener is None:
            raise RuntimeError("transport not started")
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # public API

    @property
    def chains(self) -> frozenset[str]:
        return self._chains

    def set_chains(self, chains: Iterable[str]) -> None:
        """Change the hosted chains (a parallel chain joined or left)."""
        chains = frozenset(chains)
        if not chains:
            raise ValueError("a transport hosts at least one chain")
        self._chains = chains

    @property
    def open_links(self) -> int:
        """Connections open or in their handshake, duplicates included."""
        return len(self._links)

    def connected_peers(self) -> list[str]:
        return sorted(name for name, state in self._peers.items() if state.link is not None)

    async def wait_connected(self, peers: Iterable[str]) -> None:
        """Return once every named peer has a link (wrap in a timeout)."""
        for name in peers:
            await self._peers[name].up.wait()

    def peer_stats(self, peer: str) -> PeerStats:
        state = self._peers[peer]
        return replace(
            state.stats,
            dropped=state.outbox.dropped,
            refused=state.outbox.refused,
            queued_frames=len(state.outbox),
            queued_bytes=state.outbox.size_bytes,
        )

    def all_peer_stats(self) -> dict[str, PeerStats]:
        return {name: self.peer_stats(name) for name in sorted(self._peers)}

    def send(self, peer: str, envelope: Envelope) -> bool:
        """Queue ``envelope`` for ``peer``. False if a reliable frame was refused
        by a full queue. Raises ValueError for an envelope we must not send."""
        state = self._peers.get(peer)
        if state is None:
            raise ValueError(f"unknown peer {peer!r}")
        frame, spec = self._encode(envelope)
        return self._enqueue(state, frame, spec.delivery)

    def broadcast(self, envelope: Envelope) -> list[str]:
        """Queue ``envelope`` for every peer; returns the peers that refused it."""
        frame, spec = self._encode(envelope)
        return [
            name
            for name, state in sorted(self._peers.items())
            if not self._enqueue(state, frame, spec.delivery)
        ]

    # sending

    def _encode(self, envelope: Envelope) -> tuple[bytes, KindSpec]:
        spec = self._kinds.get(envelope.kind)
        if spec is None:
            raise ValueError(f"unknown kind {envelope.kind}")
        if envelope.chain_id not in self._chains:
            raise ValueError(f"chain {envelope.chain_id!r} is not hosted here")
        if len(envelope.payload) > spec.payload_size_max:
            raise FrameTooLarge(
                f"kind {envelope.kind} payload of {len(envelope.payload)} bytes "
                f"exceeds {spec.payload_size_max}"
            )
        frame = encode_frame(envelope)
        if len(frame) - HEADER_SIZE > self.config.frame_size_max:
            raise FrameTooLarge(f"frame of {len(frame)} bytes exceeds the maximum")
        return frame, spec

    def _enqueue(self, state: _PeerState, frame: bytes, delivery: Delivery) -> bool:
        if not state.outbox.push(frame, delivery):
            self._log_refusal(state)
            return False
        self._schedule_flush(state)
        return True

    def _log_refusal(self, state: _PeerState) -> None:
        # A full queue refuses frames at the sender's rate: log a summary, not each one.
        state.refusals_unlogged += 1
        now = asyncio.get_running_loop().time()
        if now - state.refusal_logged_s < REFUSAL_LOG_INTERVAL_S:
            return
        self._log.warning(
            "send queue to %s full (%d frames, %d bytes): %d frames refused",
            state.spec.name,
            len(state.outbox),
            state.outbox.size_bytes,
            state.refusals_unlogged,
        )
        state.refusal_logged_s = now
        state.refusals_unlogged = 0

    def _schedule_flush(self, state: _PeerState) -> None:
        # Coalesce every send of one loop iteration into few large writes:
        # one TLS record per small frame would cost far more than the frame.
        link = state.link
        if state.flush_handle is None and link is not None and link.writable:
            state.flush_handle = asyncio.get_running_loop().call_soon(self._flush, state)

    def _flush(self, state: _PeerState) -> None:
        state.flush_handle = None
        link = state.link
        if link is None:
            return
        if not (link.writable and state.outbox):
            return
        while link.writable and state.outbox:
            batch = state.outbox.pop_batch(self.config.write_batch_bytes_max)
            link.write(batch)
            state.stats.frames_out += len(batch)
            state.stats.bytes_out += sum(len(frame) for frame in batch)
        link.last_tx_s = asyncio.get_running_loop().time()

    # accepting and dialing

    async def _accept_loop(self) -> None:
        # Accepting the socket ourselves and handing it to connect_accepted_socket
        # (rather than create_server) lets us see, log and count failed TLS
        # handshakes, and bound how many run at once.
        assert self._listener is not None
        loop = asyncio.get_running_loop()
        while self._running:
            try:
                sock, peername = await loop.sock_accept(self._listener)
            except OSError as exc:  # e.g. out of file descriptors: retry later
                self._log.warning("accept failed: %s", _describe(exc))
                await asyncio.sleep(self.config.backoff_initial_ms / 1000)
                continue
            self.stats.accepted += 1
            host = _host_of(peername)
            if not self._may_handshake(host):
                self.stats.busy_refused += 1
                sock.close()
                continue
            # Counted here, not in the task, so a burst of accepts sees the bound.
            self._handshakes_pending += 1
            self._pending_by_host[host] = self._pending_by_host.get(host, 0) + 1
            self._spawn(self._handshake_inbound(sock, _format_address(peername), host))

    def _may_handshake(self, host: str) -> bool:
        # One address cannot take every handshake slot and lock the others out.
        return (
            self._handshakes_pending < self.config.handshakes_pending_max
            and self._pending_by_host.get(host, 0) < self.config.handshakes_per_host_max
        )

    async def _handshake_inbound(self, sock: socket.socket, remote: str, host: str) -> None:
        link = self._new_link(outbound=False, expected_peer=None)
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(
                lambda: link,
                sock,
                ssl=self._server_ssl,
                ssl_handshake_timeout=self.config.handshake_timeout_ms / 1000,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            self.stats.handshakes_failed += 1
            self._log.warning("TLS handshake from %s failed: %s", remote, _describe(exc))
        finally:
            self._handshakes_pending -= 1
            left = self._pending_by_host.pop(host) - 1
            if left:
                self._pending_by_host[host] = left
            if not link.made:
                sock.close()
                self._links.discard(link)

    async def _dial_loop(self, state: _PeerState) -> None:
        while self._running:
            await state.down.wait()
            await self._dial(state)
            # Returns at once if the dial failed or the link already dropped.
            await state.down.wait()
            await asyncio.sleep(state.backoff.next_delay_ms() / 1000)

    async def _dial(self, state: _PeerState) -> None:
        assert state.spec.address is not None
        host, port = state.spec.address
        link = self._new_link(outbound=True, expected_peer=state.spec.name)
        loop = asyncio.get_running_loop()
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
        timeout_s = (self.config.connect_timeout_ms + self.config.handshake_timeout_ms) / 1000
        try:
            async with asyncio.timeout(timeout_s):
                await loop.create_connection(
                    lambda: link,
                    host,
                    port,
                    ssl=self._client_ssl,
                    server_hostname=state.spec.name,
                    ssl_handshake_timeout=self.config.handshake_timeout_ms / 1000,
                )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            self._log.info(
                "dial %s at %s:%d failed: %s", state.spec.name, host, port, _describe(exc)
            )
        finally:
            if not link.made:
                self._links.discard(link)

    def _new_link(self, *, outbound: bool, expected_peer: str | None) -> Link:
        link = Link(
            self,
            outbound=outbound,
            expected_peer=expected_peer,
            frame_size_max=self.config.frame_size_max,
        )
        self._links.add(link)
        return link

    # LinkOwner callbacks

    def link_up(self, link: Link) -> None:
        try:
            name = self._directory.identify(link.peer_cert_der(), link.expected_peer)
        except PeerRefused as exc:
            self.stats.peers_refused += 1
            self._log.warning("refused link with %s: %s", link.remote, exc)
            link.abort()
            return
        if not self._running:
            link.abort()
            return
        link.peer = name
        link.last_rx_s = link.last_tx_s = asyncio.get_running_loop().time()
        state = self._peers[name]
        old = state.link
        if old is not None and not self._replaces(state, old, link):
            return
        self._adopt(state, link, replacing=old is not None)

    def _replaces(self, state: _PeerState, old: Link, new: Link) -> bool:
        self.stats.duplicate_links += 1
        local, remote = self.config.node_name, state.spec.name
        if keeps_new_link(local, remote, old_outbound=old.outbound, new_outbound=new.outbound):
            self._log.info("link to %s replaced by a newer one (%s)", remote, new.remote)
            state.link = None  # so that old's connection_lost leaves the new link alone
            self._retire(old)
            return True
        self._log.info("duplicate link with %s (%s) retired", remote, new.remote)
        self._retire(new)
        # The peer dialed again although we hold a link: if that link is dead
        # (the peer restarted), writing on it brings the reset that frees the slot.
        if old.writable:
            old.write([self._ping])
        return False

    def _retire(self, link: Link) -> None:
        # The peer may have written on this link before it chose the same
        # survivor as we did: stop writing here, but keep reading for a grace
        # period so those frames still arrive.
        asyncio.get_running_loop().call_later(self.config.retire_grace_ms / 1000, link.close)

    def _adopt(self, state: _PeerState, link: Link, *, replacing: bool) -> None:
        state.link = link
        state.up_since_s = link.last_rx_s
        state.stats.connected = True
        if state.stats.links_up > 0 and not replacing:
            state.stats.reconnects += 1
        state.stats.links_up += 1
        state.down.clear()
        state.up.set()
        link.set_write_buffer_limits(self.config.write_buffer_high_bytes)
        direction = "dialed" if link.outbound else "accepted"
        self._log.info("link to %s up (%s, %s)", state.spec.name, direction, link.remote)
        self._schedule_flush(state)

    def link_down(self, link: Link, exc: Exception | None) -> None:
        self._links.discard(link)
        if link.peer is None:
            return
        state = self._peers[link.peer]
        if state.link is not link:
            return
        state.link = None
        state.stats.connected = False
        state.up.clear()
        state.down.set()
        now = asyncio.get_running_loop().time()
        if now - state.up_since_s >= self.config.backoff_max_ms / 1000:
            state.backoff.reset()
        reason = _describe(exc) if exc is not None else "closed"
        self._log.info("link to %s down (%s): %s", link.peer, link.remote, reason)

    def link_writable(self, link: Link) -> None:
        if link.peer is not None and self._peers[link.peer].link is link:
            self._schedule_flush(self._peers[link.peer])

    def link_broken(self, link: Link, error: FrameError) -> None:
        state = self._peers[link.peer] if link.peer is not None else None
        if state is not None:
            state.stats.bad_frames += 1
        self._log.warning("closing link with %s (%s): %s", link.peer, link.remote, error)
        link.abort()

    def link_frames(self, link: Link, frames: list[bytes], size_bytes: int) -> None:
        if link.peer is None:
            return
        state = self._peers[link.peer]
        state.stats.bytes_in += size_bytes
        link.last_rx_s = asyncio.get_running_loop().time()
        for frame in frames:
            if link.closing:
                break
            self._receive(state, link, frame)

    # receiving

    def _receive(self, state: _PeerState, link: Link, frame: bytes) -> None:
        state.stats.frames_in += 1
        try:
            envelope = decode_envelope(frame, self._kinds)
        except BadEnvelope as exc:
            self._bad_frame(state, link, str(exc))
            return
        if envelope.kind == Kind.PING:
            return
        if envelope.chain_id not in self._chains:
            self._bad_frame(state, link, f"chain {envelope.chain_id!r} is not hosted here")
            return
        if self._kinds[envelope.kind].dedup and self._dedup.check_and_add(frame):
            state.stats.duplicates += 1
            return
        try:
            self._on_frame(state.spec.name, envelope)
        except BadFrame as exc:
            self._bad_frame(state, link, f"kind {envelope.kind} rejected: {exc}")
        except Exception:
            state.stats.handler_errors += 1
            self._log.exception(
                "on_frame failed on kind %d from %s", envelope.kind, state.spec.name
            )

    def _bad_frame(self, state: _PeerState, link: Link, reason: str) -> None:
        state.stats.bad_frames += 1
        link.bad_frames += 1
        self._log.warning("bad frame from %s (%s): %s", state.spec.name, link.remote, reason)
        if link.bad_frames > self.config.bad_frames_max and not link.closing:
            self._log.warning("closing link with %s: too many bad frames", state.spec.name)
            link.abort()

    # keepalive

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for state in self._peers.values():
            link = state.link
            if link is None:
                continue
            if now - link.last_rx_s > self.config.idle_timeout_ms / 1000:
                self._log.warning("link with %s (%s) idle: closing", state.spec.name, link.remote)
                link.abort()
            elif now - link.last_tx_s >= self.config.ping_interval_ms / 1000 and not state.outbox:
                self._enqueue(state, self._ping, Delivery.LOSSY)
        if self._running:
            self._ticker = loop.call_later(self.config.ping_interval_ms / 2000, self._tick)


def _format_address(peername: object) -> str:
    if isinstance(peername, tuple) and len(peername) >= 2:
        return f"{peername[0]}:{peername[1]}"
    return "?"


def _host_of(peername: object) -> str:
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return "?"


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, port), family=family, backlog=128)
    listener.setblocking(False)
    return listener
