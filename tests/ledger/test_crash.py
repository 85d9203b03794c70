"""Kill a writer with SIGKILL at random points; every acknowledged block must survive.

CHAINCITY_CRASH_ITERATIONS sets the number of kills (default 30; raise it for soak runs).
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from chaincity.cli.main import app
from chaincity.ledger import Ledger, open_store
from chaincity.ledger.ledger import pending_key
from tests.ledger.ledger_workload import CHAIN, PENDING_HASH, SUITE, safety_at

ITERATIONS = int(os.environ.get("CHAINCITY_CRASH_ITERATIONS", "30"))
SEED = int(os.environ.get("CHAINCITY_CRASH_SEED", "20261122"))
ACKS_WAIT_S = 30.0
WRITER = Path(__file__).with_name("ledger_workload.py")


def _read_acks(proc: subprocess.Popen[bytes], wanted: int, deadline: float) -> list[int]:
    """Heights the writer acknowledged, until ``wanted`` of them or the deadline."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = b""
    acks: list[int] = []
    while len(acks) < wanted and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        acks.extend(int(line) for line in lines)
    return acks


def _kill_after_random_acks(data_dir: Path, rng: random.Random, writer: Path = WRITER) -> int:
    """Start the writer, let it acknowledge a few blocks, SIGKILL it; the last ack or -1."""
    proc = subprocess.Popen(
        [sys.executable, str(writer), str(data_dir), str(10**9)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        acks = _read_acks(proc, rng.randint(1, 25), time.monotonic() + ACKS_WAIT_S)
        time.sleep(rng.random() * 0.01)  # land the kill anywhere in the next commit
        acks += _read_nonblocking(proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=10)
    assert acks, f"writer acknowledged nothing: {stderr.decode()[-2000:]}"
    return max(acks)


def _read_nonblocking(proc: subprocess.Popen[bytes]) -> list[int]:
    return _read_acks(proc, 10**6, time.monotonic())


def _reopen_height(data_dir: Path) -> int:
    store = open_store(str(data_dir))
    try:
        ledger = Ledger.open(store, SUITE, CHAIN, window=8)
        assert ledger.height is not None
        # The consensus data written with the last block is there, and only that.
        assert ledger.get_safety_data() == safety_at(ledger.height)
        assert [k for k, _ in ledger.pending_items()] == [
            pending_key(ledger.height + 1, PENDING_HASH)
        ]
        return ledger.height
    finally:
        store.close()


def test_sigkill_loses_no_acknowledged_block(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    last_ack = -1
    for iteration in range(ITERATIONS):
        acked = _kill_after_random_acks(tmp_path, rng)
        height = _reopen_height(tmp_path)
        assert height >= acked, f"iteration {iteration}: acked {acked}, found {height}"
        assert height >= last_ack
        last_ack = acked
    result = CliRunner().invoke(app, ["ledger", "check", "--data", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"{CHAIN}: ok" in result.output
