"""`chaincity up` as a user runs it: a network comes up, commits, and stops on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.integration.netproc import free_port_base, wait_for


def _height(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/status", timeout=2) as resp:
            return int(json.loads(resp.read())["chains"][0]["height"])
    except OSError:
        return -1


def _node_pids(root: Path) -> list[int]:
    out = subprocess.run(["pgrep", "-f", "--", f"--config {root}"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _run_up(root: Path) -> subprocess.Popen[str]:
    # A fresh network directory is created by `up` itself when DIR holds none;
    # here ports are chosen by `init` first so parallel runs cannot collide.
    return subprocess.Popen(
        [sys.executable, "-m", "chaincity", "up", "--dir", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_up_runs_a_network_then_stops_every_node_and_resumes(tmp_path: Path) -> None:
    root = tmp_path / "net"
    base = free_port_base(10)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "chaincity",
            "init",
            "--dir",
            str(root),
            "--base-port",
            str(base),
            "--api-base-port",
            str(base + 5),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    api = base + 5
    proc = _run_up(root)
    try:
        wait_for(lambda: _height(api) >= 2, 60, "blocks from `chaincity up`")
        assert len(_node_pids(root)) == 4
        reached = _height(api)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{api}" in out and "member.key" in out
    assert "all nodes stopped" in out
    deadline = time.monotonic() + 10
    while _node_pids(root) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _node_pids(root) == []
    # Running it again resumes the same network, with its data: the first
    # answer already reports at least the height reached before.
    proc = _run_up(root)
    try:
        wait_for(lambda: _height(api) >= 0, 60, "the resumed network's API")
        assert _height(api) >= reached
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert "created a network" not in out
    assert proc.returncode == 0
