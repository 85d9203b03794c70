"""A fresh local network for one bench run: created, started, watched, stopped.

The nodes run exactly as under ``chaincity up``: one ``chaincity node``
process each, durable storage in the network directory, real sockets on
127.0.0.1, on ports checked free first so a bench does not collide with a
running network, and taken below the kernel's ephemeral range (see
:func:`port_window`).
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from dataclasses import dataclass

import msgspec

from chaincity.genesis.inspect import NetworkView
from chaincity.genesis.layout import node_dir
from chaincity.genesis.model import ChainParams
from chaincity.genesis.network import InitOptions
from chaincity.node import local

HOST = "127.0.0.1"
EXPIRY_BLOCKS = 1_000_000
PORT_LOW = 20_000
PORT_HIGH = 60_000  # where the ephemeral range is unknown
PORT_WINDOW_MIN = 2_000  # ports below the ephemeral range, or that range is not avoided
PORT_TRIES_MAX = 50
_EPHEMERAL_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"
STATUS_TIMEOUT_S = 1.0
READY_POLL_S = 0.25
LOG_TAIL_BYTES = 2_000


class BenchError(Exception):
    """The bench could not run (the network would not start, a port was taken, ...)."""


def init_options(nodes: int, suite: str, base_port: int, block_txs: int = 0) -> InitOptions:
    """The layout ``chaincity up`` uses, on the given port range (p2p then API);
    ``block_txs``: the network's block_txs_max (0: the default)."""
    orgs, per_org = local.org_layout(nodes)
    params = ChainParams(tx_expiry_blocks_max=EXPIRY_BLOCKS)
    if block_txs:
        params = msgspec.structs.replace(params, block_txs_max=block_txs)
    return InitOptions(
        orgs=orgs,
        validators_per_org=per_org,
        suite=suite,
        base_port=base_port,
        api_base_port=base_port + nodes,
        host=HOST,
        # Transactions are all signed before the clock starts: a window of 1,000
        # blocks would let them expire during a longer run, when blocks come fast.
        params=params,
    )


def is_port_range_free(base: int, count: int) -> bool:
    """Whether ``count`` ports from ``base`` can all be bound on 127.0.0.1 now."""
    for port in range(base, base + count):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                return False
    return True


def _ephemeral_low(path: str = _EPHEMERAL_RANGE) -> int | None:
    """The first port the kernel hands out as a source port, where it says (Linux)."""
    try:
        with open(path) as text:
            return int(text.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def port_window(path: str = _EPHEMERAL_RANGE) -> tuple[int, int]:
    """The ports [low, high) to choose a network's ports from: below the ephemeral range.

    Outgoing connections take their source ports from that range, so a port there can
    be taken between the check that it is free and the node's bind; and a client that
    polls such a port before its node listens can connect to itself (both ends the
    same port) and read its own request back as the answer."""
    low = _ephemeral_low(path)
    if low is not None and low - PORT_LOW >= PORT_WINDOW_MIN:
        return PORT_LOW, min(low, PORT_HIGH)
    return PORT_LOW, PORT_HIGH


def find_free_base_port(count: int, rng: random.Random) -> int:
    low, high = port_window()
    for _ in range(PORT_TRIES_MAX):
        base = rng.randrange(low, high - count)
        if is_port_range_free(base, count):
            return base
    raise BenchError(f"no {count} free consecutive ports found on {HOST}")


@dataclass
class RunningNetwork:
    view: NetworkView
    procs: dict[str, subprocess.Popen[bytes]]

    @property
    def api_urls(self) -> list[str]:
        return [f"http://{n.config.api.host}:{n.config.api.port}" for n in self.view.nodes]

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    def exited(self) -> dict[str, int]:
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def log_tail(self, name: str) -> str:
        path = node_dir(self.view.root, name) / "node.log"
        try:
            with open(path, "rb") as f:
                f.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


def start_nodes(view: NetworkView) -> RunningNetwork:
    return RunningNetwork(view, local.start_nodes(view))


def stop_nodes(net: RunningNetwork) -> None:
    local.stop_nodes(net.procs)


def read_status(url: str) -> dict[str, object] | None:
    return local.read_status(url, STATUS_TIMEOUT_S)


def is_meshed(status: dict[str, object] | None, peers: int) -> bool:
    """Whether a node's status shows it connected to all ``peers`` others."""
    if status is None:
        return False
    connected = status.get("peers", {})
    return isinstance(connected, dict) and len(connected.get("connected", [])) >= peers


def chain_height(status: dict[str, object] | None) -> int | None:
    chains = status.get("chains") if status else None
    if isinstance(chains, list) and chains and isinstance(chains[0], dict):
        height = chains[0].get("height")
        return height if isinstance(height, int) else None
    return None


def wait_ready(net: RunningNetwork, timeout_s: float) -> dict[str, object]:
    """Block until every node answers and is connected to every other; the first's status."""
    deadline = time.monotonic() + timeout_s
    peers = len(net.procs) - 1
    while time.monotonic() < deadline:
        if net.exited():
            name, code = next(iter(net.exited().items()))
            raise BenchError(f"node {name} exited with {code}:\n{net.log_tail(name)}")
        statuses = [read_status(url) for url in net.api_urls]
        if all(is_meshed(s, peers) for s in statuses) and statuses[0] is not None:
            return statuses[0]
        time.sleep(READY_POLL_S)
    name = next(iter(net.procs))
    raise BenchError(
        f"network not ready after {timeout_s:.0f} s; {name} log:\n{net.log_tail(name)}"
    )
