"""Transports on 127.0.0.1 for tests and benchmarks: organizations, node
certificates, fixed free ports, and a frame collector that can be awaited."""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from chaincity.net import Envelope, FrameHandler, Transport, TransportConfig
from tests.net.certs import NodeCert, OrgCA, contexts, make_ca, make_node_cert, peer_spec

T = TypeVar("T")
CHAIN = "main"


def run(
    coro: Coroutine[Any, Any, T],
    timeout_s: float = 20.0,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> T:
    """Run one test body under an overall time bound."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout_s):
            return await coro

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(bounded())


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Collector:
    """on_frame that records what arrives and lets a test await a condition."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, Envelope]] = []
        self._changed = asyncio.Event()
        self.reject: Callable[[str, Envelope], None] | None = None

    def __call__(self, peer: str, envelope: Envelope) -> None:
        if self.reject is not None:
            self.reject(peer, envelope)
        self.frames.append((peer, envelope))
        self._changed.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def payloads(self, peer: str | None = None) -> list[bytes]:
        return [e.payload for p, e in self.frames if peer is None or p == peer]


async def wait_for_condition(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll a condition that no callback announces (counters, closed links)."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.01)


TEST_CONFIG: dict[str, Any] = dict(
    backoff_initial_ms=20,
    backoff_max_ms=200,
    connect_timeout_ms=2_000,
    handshake_timeout_ms=2_000,
    ping_interval_ms=1_000,
    idle_timeout_ms=30_000,
    stop_timeout_ms=200,
    retire_grace_ms=300,
)


@dataclass
class Network:
    """Organizations and nodes; every node knows every other node."""

    directory: Path
    orgs: dict[str, OrgCA] = field(default_factory=dict)
    nodes: dict[str, NodeCert] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    dialing: set[str] = field(default_factory=set)

    def add(self, org: str, name: str, *, port: int, dials: bool = True) -> NodeCert:
        if org not in self.orgs:
            self.orgs[org] = make_ca(org)
        node = make_node_cert(self.orgs[org], name, self.directory)
        self.nodes[name] = node
        self.ports[name] = port
        if dials:
            self.dialing.add(name)
        return node

    def ssl_contexts(self, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
        return contexts(self.nodes[name], list(self.orgs.values()))

    def transport(self, name: str, on_frame: FrameHandler, **overrides: Any) -> Transport:
        peers = {
            other: peer_spec(
                node, ("127.0.0.1", self.ports[other]) if other in self.dialing else None
            )
            for other, node in self.nodes.items()
            if other != name
        }
        config = TransportConfig(
            node_name=name, chains=frozenset({CHAIN}), port=self.ports[name], **TEST_CONFIG
        )
        config = replace(config, **overrides)
        server_ssl, client_ssl = self.ssl_contexts(name)
        return Transport(config, peers, server_ssl, client_ssl, on_frame, random.Random(name))


def make_network(directory: Path, layout: dict[str, str], accept_only: set[str]) -> Network:
    """``layout`` maps node name to organization."""
    network = Network(directory)
    ports = free_ports(len(layout))
    for (name, org), port in zip(layout.items(), ports, strict=True):
        network.add(org, name, port=port, dials=name not in accept_only)
    return network
