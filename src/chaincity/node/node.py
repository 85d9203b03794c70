"""A node process: one event loop, one transport, one API server, its chains.

Construct with everything loaded (``Node.from_config`` reads the files), then
``await start()``; ``await stop()`` closes the API, the transport and the
storage in that order. Only the main chain exists so far, but every route,
message and key is already chain-scoped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.serialization import Encoding

from chaincity import __version__
from chaincity.api.server import Api
from chaincity.crypto import get_suite
from chaincity.crypto.keyfile import KeyPair, load_key_pair
from chaincity.crypto.x509 import client_context, load_cert, server_context
from chaincity.genesis.model import Genesis, load_genesis
from chaincity.genesis.node_config import NodeConfig, load_node_config
from chaincity.mempool import ProcessChecker, ThreadedChecker
from chaincity.net import (
    DEFAULT_KINDS,
    Delivery,
    Envelope,
    KindSpec,
    PeerSpec,
    Transport,
    TransportConfig,
)
from chaincity.net.frames import PAYLOAD_SIZE_MAX
from chaincity.node.chain import ChainDeps, ChainRuntime
from chaincity.node.ledger_store import open_chain_store
from chaincity.node.metrics import Metrics
from chaincity.node.wire import Kind

log = logging.getLogger("chaincity.node")

SWITCH_INTERVAL_S = 0.0005  # with signature threads; see Node.start

NODE_KINDS: dict[int, KindSpec] = {
    **DEFAULT_KINDS,
    Kind.SYNC_STATUS: KindSpec(64, Delivery.LOSSY),
    Kind.BLOCK_REQUEST: KindSpec(128, Delivery.RELIABLE),
    Kind.BLOCK_RESPONSE: KindSpec(PAYLOAD_SIZE_MAX, Delivery.RELIABLE),
}


@dataclass(frozen=True)
class NodeFiles:
    config: NodeConfig
    genesis: Genesis
    key: KeyPair
    ca_pems: dict[str, bytes]  # transport CA certificate (DER) per organization


class _Outbox:
    """Maps a chain's validator indexes onto transport peers."""

    def __init__(self, node: Node, chain_id: str) -> None:
        self._node = node
        self._chain = chain_id

    def send(self, index: int, kind: Kind, payload: bytes) -> None:
        name = (
            self._node.validator_names[index]
            if 0 <= index < len(self._node.validator_names)
            else None
        )
        if name is None or name == self._node.name or self._node.transport is None:
            return
        if not self._node.transport.send(name, Envelope(self._chain, kind, payload)):
            self._node.metrics.inc("chaincity_sends_refused_total", peer=name)

    def broadcast(self, kind: Kind, payload: bytes) -> None:
        if self._node.transport is not None:
            for name in self._node.transport.broadcast(Envelope(self._chain, kind, payload)):
                self._node.metrics.inc("chaincity_sends_refused_total", peer=name)


class Node:
    def __init__(self, files: NodeFiles) -> None:
        self.files = files
        self.config = files.config
        self.name = files.config.name
        self.genesis = files.genesis
        self.suite = get_suite(files.genesis.suite)
        self.validator_names = [v.name for v in files.genesis.validators.validators]
        self.metrics = Metrics()
        self.chains: dict[str, ChainRuntime] = {}
        self.transport: Transport | None = None
        self._runner: web.AppRunner | None = None
        self._stores: list[Any] = []
        self.signatures: ThreadedChecker | ProcessChecker | None = None
        self._switch_interval_s: float | None = None
        self.started_ms = 0

    @classmethod
    def from_config(cls, path: Path) -> Node:
        config = load_node_config(path)
        genesis = load_genesis(config.genesis)
        key = load_key_pair(Path(config.consensus_key))
        cas = {}
        for org in genesis.orgs:
            cert = load_cert(org.tls_ca_cert_pem.encode(), f"{config.genesis}: org {org.name}")
            cas[org.name] = cert.public_bytes(Encoding.DER)
        return cls(NodeFiles(config, genesis, key, cas))

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.started_ms = _now_ms()
        chain_id = self.genesis.network_id
        store = open_chain_store(
            Path(self.config.data_dir),
            chain_id,
            self.suite,
            self.genesis,
            state_cache_pages=self.config.state_cache_pages,
        )
        self._stores.append(store)
        threads = self._start_signature_threads(loop)
        deps = ChainDeps(
            genesis=self.genesis,
            suite=self.suite,
            private_key=self.files.key.private_key,
            store=store,
            outbox=_Outbox(self, chain_id),
            schedule=lambda delay, fn: loop.call_later(delay, _guarded(fn)),
            now_ms=_now_ms,
            metrics=self.metrics,
            signatures=self.signatures,
            cpu_clock=time.thread_time,
        )
        runtime = ChainRuntime(chain_id, deps)
        self.chains[chain_id] = runtime
        self.transport = self._make_transport()
        await self.transport.start()
        runtime.start()
        await self._start_api()
        log.info(
            "node %s up: p2p %s:%d, api http://%s:%d, signature %s %d",
            self.name,
            self.config.p2p.host,
            self.config.p2p.port,
            self.config.api.host,
            self.config.api.port,
            "processes" if self.config.verify_processes else "threads",
            threads,
        )

    def _start_signature_threads(self, loop: asyncio.AbstractEventLoop) -> int:
        """Threads (or processes) for admission's signature checks; 0 when they run on
        the loop."""
        if self.config.verify_processes:
            self.signatures = ProcessChecker(
                self.config.verify_processes, loop.call_soon_threadsafe
            )
            return self.config.verify_processes
        threads = verify_threads(self.config)
        if threads <= 1:
            return 0
        self.signatures = ThreadedChecker(threads, loop.call_soon_threadsafe)
        # A worker needs the GIL back after each signature, and a busy loop hands
        # it over once per switch interval: two workers beside a busy loop checked
        # ~400 signatures/s at the default 5 ms, ~3,300/s at 0.5 ms, with the
        # loop's own pace unchanged.
        self._switch_interval_s = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        return threads

    def _make_transport(self) -> Transport:
        vset = self.genesis.validators.validators
        org_of = {v.name: v.org for v in vset}
        peers = {}
        for p in self.config.peers:
            org = org_of.get(p.name)
            if org is None or org not in self.files.ca_pems:
                raise ValueError(f"peer {p.name!r} is not a validator of the genesis")
            peers[p.name] = PeerSpec(p.name, org, self.files.ca_pems[org], (p.host, p.port))
        tls = self.config.tls
        config = TransportConfig(
            node_name=self.name,
            chains=frozenset(self.chains),
            host=self.config.p2p.host,
            port=self.config.p2p.port,
            kinds=NODE_KINDS,
        )
        return Transport(
            config,
            peers,
            server_context(tls.cert, tls.key, tls.ca_bundle),
            client_context(tls.cert, tls.key, tls.ca_bundle),
            self._on_frame,
            random.SystemRandom(),  # jitter for reconnect backoff
        )

    async def _start_api(self) -> None:
        self._runner = web.AppRunner(Api(self).app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.api.host, self.config.api.port)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for runtime in self.chains.values():
            runtime.stop()
        if self.transport is not None:
            await self.transport.stop()
            self.transport = None
        # After the API and the transport (nothing new comes in), before the stores
        # close (a batch that finishes meanwhile is dropped by its stopped chain).
        if self.signatures is not None:
            self.signatures.close()
            self.signatures = None
        if self._switch_interval_s is not None:
            sys.setswitchinterval(self._switch_interval_s)
            self._switch_interval_s = None
        for store in self._stores:
            store.close()
        self._stores.clear()

    # ------------------------------------------------------------ inbound

    def _on_frame(self, peer: str, envelope: Envelope) -> None:
        runtime = self.chains.get(envelope.chain_id)
        if runtime is None:
            return
        try:
            kind = Kind(envelope.kind)
        except ValueError:
            return
        index = self.validator_names.index(peer) if peer in self.validator_names else -1
        runtime.on_message(index, kind, envelope.payload)

    # ------------------------------------------------------------ NodeService

    def chain(self, chain_id: str) -> ChainRuntime | None:
        return self.chains.get(chain_id)

    def status(self) -> dict[str, Any]:
        connected = self.transport.connected_peers() if self.transport else []
        return {
            "node": self.name,
            "org": self.config.org,
            "version": __version__,
            "uptime_s": (_now_ms() - self.started_ms) // 1000,
            "peers": {"configured": len(self.config.peers), "connected": connected},
            "chains": [rt.status() for rt in self.chains.values()],
        }

    def metrics_text(self) -> str:
        return self.metrics.render()


def verify_threads(config: NodeConfig) -> int:
    """Threads that check signatures at admission; 0 or 1 means inline. "auto" leaves
    one core to the event loop: on two cores that is inline, where the handover to a
    thread measured no gain."""
    if config.verify_threads == "auto":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        return max(1, (cores or os.cpu_count() or 1) - 1)
    return config.verify_threads


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _guarded(fn: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            fn()
        except Exception:
            log.exception("timer callback failed")

    return run
