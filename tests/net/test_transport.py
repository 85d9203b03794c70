"""Transports over real TLS sockets on 127.0.0.1 (ephemeral ports, bounded waits)."""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from chaincity.net import (
    BadFrame,
    Envelope,
    FrameTooLarge,
    Kind,
    LaneLimits,
    Transport,
    TransportConfig,
    encode_frame,
)
from tests.net.certs import contexts, make_ca, make_node_cert
from tests.net.harness import (
    CHAIN,
    Collector,
    Network,
    make_network,
    run,
    wait_for_condition,
)

MESH = {"a": "bank", "b": "bank", "c": "tax", "d": "court"}
LoopFactory = Callable[[], asyncio.AbstractEventLoop] | None


# uvloop is a dependency everywhere but Windows (see pyproject.toml).
LOOPS = ["asyncio"] if sys.platform == "win32" else ["asyncio", "uvloop"]


@pytest.fixture(params=LOOPS)
def loop_factory(request: pytest.FixtureRequest) -> LoopFactory:
    """Every socket test runs on both loops: the node installs uvloop."""
    if request.param == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def has_all(collector: Collector, expected: set[bytes]) -> bool:
    return expected <= set(collector.payloads())


async def start_all(network: Network, names: list[str]) -> dict[str, tuple[Transport, Collector]]:
    nodes = {}
    for name in names:
        collector = Collector()
        transport = network.transport(name, collector)
        await transport.start()
        nodes[name] = (transport, collector)
    return nodes


async def stop_all(nodes: dict[str, tuple[Transport, Collector]]) -> None:
    for transport, _ in nodes.values():
        await transport.stop()


async def raw_link(network: Network, as_name: str, to: str) -> tuple[asyncio.StreamReader, Any]:
    _, client_ssl = network.ssl_contexts(as_name)
    return await asyncio.open_connection(
        "127.0.0.1", network.ports[to], ssl=client_ssl, server_hostname=to
    )


def test_mesh_of_four_exchanges_frames_over_one_link_per_pair(
    tmp_path: Path, loop_factory: LoopFactory
) -> None:
    network = make_network(tmp_path, MESH, accept_only=set())

    async def body() -> None:
        nodes = await start_all(network, list(MESH))
        try:
            for name, (transport, _) in nodes.items():
                others = [n for n in MESH if n != name]
                await asyncio.wait_for(transport.wait_connected(others), 5)
            for name, (transport, _) in nodes.items():
                refused = transport.broadcast(
                    Envelope(CHAIN, Kind.CONSENSUS, f"vote from {name}".encode())
                )
                assert refused == []
            assert nodes["a"][0].send("d", Envelope(CHAIN, Kind.SYNC_REQUEST, b"height 7"))
            for name, (_, collector) in nodes.items():
                expected = {f"vote from {n}".encode() for n in MESH if n != name}
                await collector.wait_until(partial(has_all, collector, expected))
            await nodes["d"][1].wait_until(lambda: b"height 7" in nodes["d"][1].payloads("a"))
            # crossing dials settle on exactly one connection per pair
            await wait_for_condition(lambda: all(t.open_links == 3 for t, _ in nodes.values()))
            # order holds within a lane of one link
            numbered = [b"seq %03d" % i for i in range(200)]
            for payload in numbered:
                assert nodes["b"][0].send("a", Envelope(CHAIN, Kind.CONSENSUS, payload))
            a_frames = nodes["a"][1]
            await a_frames.wait_until(lambda: b"seq 199" in a_frames.payloads("b"))
            assert [p for p in a_frames.payloads("b") if p.startswith(b"seq")] == numbered
            stats = nodes["a"][0].peer_stats("d")
            assert stats.connected and stats.frames_out >= 2 and stats.bytes_in > 0
        finally:
            await stop_all(nodes)

    run(body(), loop_factory=loop_factory)


def test_unknown_ca_and_unconfigured_names_are_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, loop_factory: LoopFactory
) -> None:
    caplog.set_level(logging.INFO, logger="chaincity.net")
    network = make_network(tmp_path, {"a": "bank", "b": "tax", "c": "tax"}, accept_only={"c"})
    evil = make_ca("tax")  # same org name, another key: an impostor CA
    impostor = make_node_cert(evil, "c", tmp_path / "evil")
    stranger = make_node_cert(network.orgs["bank"], "z", tmp_path / "z")

    async def attempt(ctx: ssl.SSLContext) -> None:
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", network.ports["a"], ssl=ctx, server_hostname="a"
            )
            writer.write(encode_frame(Envelope(CHAIN, Kind.CONSENSUS, b"let me in")))
            await asyncio.wait_for(reader.read(), 5)
            writer.close()
        except (OSError, ssl.SSLError):
            pass  # refused during or right after the handshake

    async def body() -> None:
        nodes = await start_all(network, ["a", "b"])
        a, a_frames = nodes["a"]
        try:
            await asyncio.wait_for(a.wait_connected(["b"]), 5)
            trusted = list(network.orgs.values())
            await attempt(contexts(impostor, [*trusted, evil])[1])
            await attempt(contexts(stranger, trusted)[1])
            await wait_for_condition(
                lambda: a.stats.handshakes_failed >= 1 and a.stats.peers_refused >= 1
            )
            assert a.connected_peers() == ["b"]
            assert a_frames.payloads() == []
            nodes["b"][0].send("a", Envelope(CHAIN, Kind.CONSENSUS, b"still fine"))
            await a_frames.wait_until(lambda: a_frames.payloads("b") == [b"still fine"])
        finally:
            await stop_all(nodes)

    run(body(), loop_factory=loop_factory)
    assert "TLS handshake from 127.0.0.1" in caplog.text
    assert "no configured peer" in caplog.text


def test_bad_frames_are_logged_dropped_and_finally_disconnect(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, loop_factory: LoopFactory
) -> None:
    caplog.set_level(logging.INFO, logger="chaincity.net")
    network = make_network(tmp_path, {"a": "bank", "b": "tax", "d": "court"}, accept_only={"d"})

    async def body() -> None:
        nodes = await start_all(network, ["a", "b"])
        a, a_frames = nodes["a"]
        try:
            await asyncio.wait_for(a.wait_connected(["b"]), 5)
            reader, writer = await raw_link(network, "d", "a")
            await asyncio.wait_for(a.wait_connected(["d"]), 5)
            body_garbage = b"\x93\xffgarbage"
            writer.write(len(body_garbage).to_bytes(4, "big") + body_garbage)
            writer.write(encode_frame(Envelope("energy", Kind.CONSENSUS, b"other chain")))
            writer.write(encode_frame(Envelope(CHAIN, 999, b"unknown kind")))
            writer.write(encode_frame(Envelope(CHAIN, Kind.CONSENSUS, b"fine")))
            await a_frames.wait_until(lambda: a_frames.payloads("d") == [b"fine"])
            assert a.peer_stats("d").bad_frames == 3
            assert a.connected_peers() == ["b", "d"]
            writer.write((64 * 1024 * 1024).to_bytes(4, "big"))  # far above the maximum
            await asyncio.wait_for(reader.read(), 5)  # returns at EOF: a closed the link
            await wait_for_condition(lambda: a.connected_peers() == ["b"])
            writer.close()
            assert a.peer_stats("d").bad_frames == 4
            nodes["b"][0].send("a", Envelope(CHAIN, Kind.CONSENSUS, b"unaffected"))
            await a_frames.wait_until(lambda: b"unaffected" in a_frames.payloads("b"))
        finally:
            await stop_all(nodes)

    run(body(), loop_factory=loop_factory)
    assert "bad frame from d (127.0.0.1:" in caplog.text
    assert "chain 'energy' is not hosted here" in caplog.text
    assert "exceeds" in caplog.text


def test_frames_the_handler_rejects_count_and_close_the_link(
    tmp_path: Path, loop_factory: LoopFactory
) -> None:
    network = make_network(tmp_path, {"a": "bank", "b": "tax"}, accept_only=set())

    def reject_forged(peer: str, envelope: Envelope) -> None:
        if envelope.payload.startswith(b"forged"):
            raise BadFrame("signature does not verify")
        if envelope.payload == b"crash":
            raise RuntimeError("handler bug")

    async def body() -> None:
        a_frames, b_frames = Collector(), Collector()
        a_frames.reject = reject_forged
        a = network.transport("a", a_frames, bad_frames_max=2)
        b = network.transport("b", b_frames)
        await a.start()
        await b.start()
        try:
            await asyncio.wait_for(a.wait_connected(["b"]), 5)
            # crossing dials settle first, so the link count below means a disconnect
            await wait_for_condition(lambda: a.open_links == 1 and b.open_links == 1)
            assert a.peer_stats("b").reconnects == 0
            b.send("a", Envelope(CHAIN, Kind.CONSENSUS, b"crash"))
            b.send("a", Envelope(CHAIN, Kind.CONSENSUS, b"forged 1"))
            b.send("a", Envelope(CHAIN, Kind.CONSENSUS, b"ok"))
            await a_frames.wait_until(lambda: a_frames.payloads() == [b"ok"])
            stats = a.peer_stats("b")
            assert (stats.bad_frames, stats.handler_errors) == (1, 1)
            for i in range(2):
                b.send("a", Envelope(CHAIN, Kind.CONSENSUS, b"forged %d" % i))
            await wait_for_condition(lambda: a.peer_stats("b").bad_frames == 3)
            await wait_for_condition(lambda: a.peer_stats("b").reconnects == 1)
        finally:
            await a.stop()
            await b.stop()

    run(body(), loop_factory=loop_factory)


def test_a_restarted_peer_comes_back_via_reconnect(
    tmp_path: Path, loop_factory: LoopFactory
) -> None:
    network = make_network(tmp_path, {"a": "bank", "b": "tax", "c": "court"}, accept_only=set())

    async def body() -> None:
        nodes = await start_all(network, ["a", "b", "c"])
        a, _ = nodes["a"]
        try:
            await asyncio.wait_for(a.wait_connected(["b", "c"]), 5)
            await nodes["c"][0].stop()
            # frames sent before a peer notices the loss may be lost; wait for both
            await wait_for_condition(lambda: a.connected_peers() == ["b"])
            await wait_for_condition(lambda: nodes["b"][0].connected_peers() == ["a"])
            assert a.send("c", Envelope(CHAIN, Kind.CONSENSUS, b"queued while down"))
            c_frames = Collector()
            nodes["c"] = (network.transport("c", c_frames), c_frames)
            await nodes["c"][0].start()
            await asyncio.wait_for(a.wait_connected(["c"]), 5)
            await asyncio.wait_for(nodes["c"][0].wait_connected(["a", "b"]), 5)
            await c_frames.wait_until(lambda: b"queued while down" in c_frames.payloads("a"))
            nodes["b"][0].send("c", Envelope(CHAIN, Kind.CONSENSUS, b"hello again"))
            await c_frames.wait_until(lambda: b"hello again" in c_frames.payloads("b"))
            assert a.peer_stats("c").reconnects >= 1
        finally:
            await stop_all(nodes)

    run(body(), loop_factory=loop_factory)


def test_a_slow_reader_hits_the_queue_limit_not_memory(
    tmp_path: Path, loop_factory: LoopFactory
) -> None:
    network = make_network(tmp_path, {"a": "bank", "b": "tax", "d": "court"}, accept_only={"d"})
    frame_max = 128 * 1024
    lossy = LaneLimits(32, 1024 * 1024)
    reliable = LaneLimits(16, 2 * frame_max)

    async def body() -> None:
        a_frames, b_frames = Collector(), Collector()
        a = network.transport(
            "a",
            a_frames,
            frame_size_max=frame_max,
            lossy_queue=lossy,
            reliable_queue=reliable,
            write_buffer_high_bytes=256 * 1024,
        )
        b = network.transport("b", b_frames)
        await a.start()
        await b.start()
        try:
            await asyncio.wait_for(a.wait_connected(["b"]), 5)
            _reader, writer = await raw_link(network, "d", "a")  # never reads
            await asyncio.wait_for(a.wait_connected(["d"]), 5)
            gossip = Envelope(CHAIN, Kind.TX_GOSSIP, bytes(64 * 1024))
            for _ in range(100):  # 100 rounds x 16 frames x 64 KiB = 100 MiB offered
                for _ in range(16):
                    a.send("d", gossip)
                await asyncio.sleep(0.001)
            stats = a.peer_stats("d")
            assert stats.dropped > 0
            assert stats.queued_bytes <= lossy.bytes_max
            # only what the kernel and one TLS buffer hold was ever written
            assert stats.bytes_out < 32 * 1024 * 1024
            vote = Envelope(CHAIN, Kind.CONSENSUS, bytes(16 * 1024))
            accepted = [a.send("d", vote) for _ in range(40)]
            assert accepted.count(False) > 0
            assert a.peer_stats("d").refused == accepted.count(False)
            b.send("a", Envelope(CHAIN, Kind.CONSENSUS, b"others unaffected"))
            await a_frames.wait_until(lambda: b"others unaffected" in a_frames.payloads("b"))
            a.send("b", Envelope(CHAIN, Kind.CONSENSUS, b"and back"))
            await b_frames.wait_until(lambda: b"and back" in b_frames.payloads("a"))
            writer.close()
        finally:
            await a.stop()
            await b.stop()

    run(body(), loop_factory=loop_factory)


def test_gossip_seen_twice_is_delivered_once(tmp_path: Path, loop_factory: LoopFactory) -> None:
    network = make_network(tmp_path, {"a": "bank", "b": "tax", "c": "court"}, accept_only=set())

    async def body() -> None:
        nodes = await start_all(network, ["a", "b", "c"])
        a, a_frames = nodes["a"]
        try:
            await asyncio.wait_for(a.wait_connected(["b", "c"]), 5)
            batch = Envelope(CHAIN, Kind.TX_GOSSIP, b"tx batch 1")
            vote = Envelope(CHAIN, Kind.CONSENSUS, b"same vote")
            for name in ("b", "c"):
                nodes[name][0].send("a", batch)
                nodes[name][0].send("a", vote)
            await a_frames.wait_until(lambda: a_frames.payloads().count(b"same vote") == 2)
            await wait_for_condition(
                lambda: a.peer_stats("b").frames_in + a.peer_stats("c").frames_in >= 4
            )
            assert a_frames.payloads().count(b"tx batch 1") == 1
            assert a.peer_stats("b").duplicates + a.peer_stats("c").duplicates == 1
        finally:
            await stop_all(nodes)

    run(body(), loop_factory=loop_factory)


def test_send_refuses_what_it_must_not_send(tmp_path: Path, loop_factory: LoopFactory) -> None:
    network = make_network(tmp_path, {"a": "bank", "b": "tax"}, accept_only=set())

    async def body() -> None:
        a = network.transport("a", Collector(), reliable_queue=LaneLimits(3, 64 * 1024 * 1024))
        with pytest.raises(ValueError, match="unknown peer"):
            a.send("nobody", Envelope(CHAIN, Kind.CONSENSUS, b""))
        with pytest.raises(ValueError, match="not hosted"):
            a.send("b", Envelope("energy", Kind.CONSENSUS, b""))
        with pytest.raises(ValueError, match="unknown kind"):
            a.send("b", Envelope(CHAIN, 999, b""))
        with pytest.raises(FrameTooLarge):
            a.send("b", Envelope(CHAIN, Kind.SYNC_REQUEST, bytes(8192)))
        # not started, peer unreachable: reliable frames queue, then are refused
        results = [a.send("b", Envelope(CHAIN, Kind.CONSENSUS, b"v")) for _ in range(5)]
        assert results == [True, True, True, False, False]
        assert a.broadcast(Envelope(CHAIN, Kind.CONSENSUS, b"v")) == ["b"]
        assert a.peer_stats("b").refused == 3
        # a parallel chain joined: its frames may now be sent (lossy lane has room)
        a.set_chains({CHAIN, "energy"})
        assert a.send("b", Envelope("energy", Kind.TX_GOSSIP, b"txs"))
        with pytest.raises(ValueError):
            a.set_chains([])

    run(body(), loop_factory=loop_factory)


def test_keepalive_holds_a_quiet_link_and_drops_a_silent_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, loop_factory: LoopFactory
) -> None:
    caplog.set_level(logging.INFO, logger="chaincity.net")
    network = make_network(tmp_path, {"a": "bank", "b": "tax", "d": "court"}, accept_only={"d"})
    fast = {"ping_interval_ms": 50, "idle_timeout_ms": 400}

    async def body() -> None:
        a_frames = Collector()
        a = network.transport("a", a_frames, **fast)
        b = network.transport("b", Collector(), **fast)
        await a.start()
        await b.start()
        try:
            await asyncio.wait_for(a.wait_connected(["b"]), 5)
            await wait_for_condition(lambda: a.open_links == 1 and b.open_links == 1)
            # b only pings: a counts the frames, delivers none, keeps the link
            await wait_for_condition(lambda: a.peer_stats("b").frames_in >= 5)
            assert a_frames.payloads() == []
            assert a.peer_stats("b").links_up == 1
            reader, writer = await raw_link(network, "d", "a")  # says nothing
            await asyncio.wait_for(a.wait_connected(["d"]), 5)
            await asyncio.wait_for(reader.read(), 5)  # returns at EOF: a closed the link
            await wait_for_condition(lambda: a.connected_peers() == ["b"])
            assert a.peer_stats("b").links_up == 1
            writer.close()
        finally:
            await a.stop()
            await b.stop()

    run(body(), loop_factory=loop_factory)
    assert "[a] link with d (127.0.0.1:" in caplog.text and "idle: closing" in caplog.text


def test_handshakes_in_progress_are_bounded(tmp_path: Path, loop_factory: LoopFactory) -> None:
    network = make_network(tmp_path, {"a": "bank", "b": "tax"}, accept_only={"b"})

    async def body() -> None:
        a = network.transport("a", Collector(), handshakes_pending_max=2, handshake_timeout_ms=300)
        await a.start()
        writers = []
        try:
            for _ in range(5):  # TCP connections that never start TLS
                _, writer = await asyncio.open_connection("127.0.0.1", network.ports["a"])
                writers.append(writer)
            await wait_for_condition(lambda: a.stats.accepted == 5)
            assert a.stats.busy_refused == 3
            await wait_for_condition(lambda: a.stats.handshakes_failed == 2, timeout_s=10)
        finally:
            for writer in writers:
                writer.close()
            await a.stop()

    run(body(), loop_factory=loop_factory)


def test_config_rejects_unworkable_settings() -> None:
    with pytest.raises(ValueError, match="at least one chain"):
        TransportConfig(node_name="a", chains=frozenset())
    with pytest.raises(ValueError, match="PING"):
        TransportConfig(node_name="a", chains=frozenset({CHAIN}), kinds={})
    with pytest.raises(ValueError, match="maximum size"):
        TransportConfig(
            node_name="a", chains=frozenset({CHAIN}), reliable_queue=LaneLimits(10, 1024)
        )
    with pytest.raises(ValueError, match="idle_timeout_ms"):
        TransportConfig(
            node_name="a", chains=frozenset({CHAIN}), ping_interval_ms=10, idle_timeout_ms=10
        )
