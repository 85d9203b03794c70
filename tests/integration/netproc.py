"""Real node processes on 127.0.0.1 for integration tests: start, kill -9, restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaincity.bench.network import port_window
from chaincity.client import Client, ClientError, Signer
from chaincity.genesis.inspect import NetworkView, load_network
from chaincity.genesis.network import InitOptions, create_network

STARTUP_TIMEOUT_S = 60.0


def _ports_free(base: int, count: int) -> bool:
    for port in range(base, base + count):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port_base(count: int) -> int:
    """A base port with ``count`` free ports after it, below the ephemeral range
    (port_window), pid-spread so that concurrent runs pick different ones."""
    low, high = port_window()
    span = high - low - count
    start = (os.getpid() * 37) % span
    for attempt in range(200):
        base = low + (start + attempt * 97) % span
        if _ports_free(base, count):
            return base
    raise RuntimeError("no free port range on 127.0.0.1")


def wait_for(cond: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except ClientError:
            pass
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class LocalNetwork:
    def __init__(self, root: Path, validators: int = 4) -> None:
        self.root = root
        base = free_port_base(2 * validators + 2)
        orgs = 2 if validators % 2 == 0 else validators
        opts = InitOptions(
            orgs=orgs,
            validators_per_org=validators // orgs,
            base_port=base,
            api_base_port=base + validators + 1,
        )
        create_network(root, opts, time.time_ns() // 1_000_000, force=False)
        self.view: NetworkView = load_network(root, time.time_ns() // 1_000_000)
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def size(self) -> int:
        return len(self.view.nodes)

    def url(self, i: int) -> str:
        api = self.view.nodes[i].config.api
        return f"http://{api.host}:{api.port}"

    def client(self, i: int) -> Client:
        return Client(self.url(i), timeout_s=5)

    def signer(self, org: int = 0) -> Signer:
        org_dir = self.view.orgs[org].dir
        assert org_dir is not None
        return Signer.from_files(org_dir / "member.key", org_dir / "member.cert")

    def start(self, i: int) -> None:
        node = self.view.nodes[i]
        log = open(node.config_path.parent / "node.log", "ab")  # noqa: SIM115 - owned by the process
        self.procs[i] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chaincity",
                "node",
                "--config",
                str(node.config_path),
                "--log-level",
                os.environ.get("CHAINCITY_TEST_LOG", "info"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()

    def start_all(self) -> None:
        for i in range(self.size):
            self.start(i)
        wait_for(self.all_up, STARTUP_TIMEOUT_S, "every node's API")

    def is_up(self, i: int) -> bool:
        try:
            self.client(i).status()
        except ClientError:
            return False
        return True

    def all_up(self) -> bool:
        return all(self.is_up(i) for i in range(self.size) if i in self.procs)

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(i)
        proc.send_signal(sig)
        proc.wait(timeout=15)

    def stop_all(self) -> None:
        for i in list(self.procs):
            proc = self.procs[i]
            if proc.poll() is None:
                proc.terminate()
        for i in list(self.procs):
            proc = self.procs.pop(i)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def height(self, i: int) -> int:
        return self.client(i).height()

    def chain_status(self, i: int) -> dict[str, Any]:
        chains: list[dict[str, Any]] = self.client(i).status()["chains"]
        return chains[0]

    def log_tail(self, i: int, lines: int = 30) -> str:
        path = self.view.nodes[i].config_path.parent / "node.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
