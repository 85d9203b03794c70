"""Execution benchmark: notary blocks executed on an LMDB-backed state, with the
cycle collector's share of the time.

    .venv/bin/python benchmarks/execution.py [--txs 5000] [--blocks 6]

Each block holds ``--txs`` distinct notary records, pre-decoded as a node's
mempool would hand them over, so the figure is execution alone: contract
calls, metering, state reads and writes and receipts (the state root and the
ledger write are benchmarks/state.py's; the CPU time of preparing and committing
each block's update is printed after). Figures, not pass/fail; the first block
is left out (warm-up). Signatures and certificates are checked beforehand, as
in a node (verified once at admission, certificates cached).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import platform
import shutil
import statistics
import tempfile
import time

from chaincity.codec import decode, encode, encode_value
from chaincity.contracts import builtin_registry
from chaincity.crypto import get_suite
from chaincity.execution.context import Sender
from chaincity.execution.executor import BlockExecutor
from chaincity.state import AuthenticatedState, LmdbConfig, LmdbStore
from chaincity.types.identity import CertBody, MemberCert, issue_cert
from chaincity.types.tx import Transaction, TxBody, sign_tx, tx_id

SUITE = get_suite("ed25519-sha256")
CA_KEY = bytes(range(32))
MEMBER_KEY = bytes(range(1, 33))


class _GcClock:
    """Seconds the cycle collector ran, through gc.callbacks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.runs = 0
        self._started = 0.0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.runs += 1


def _block(cert: MemberCert, block_no: int, txs: int) -> list[bytes]:
    raws = []
    for i in range(txs):
        digest = hashlib.sha256(f"{block_no}:{i}".encode()).hexdigest()
        body = TxBody(
            "main", cert, block_no * txs + i, "notary", "record",
            encode_value({"digest": digest}), 500,
        )  # fmt: skip
        raws.append(encode(sign_tx(SUITE, MEMBER_KEY, body)))
    return raws


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--txs", type=int, default=5_000, help="transactions per block")
    parser.add_argument("--blocks", type=int, default=6, help="blocks (the first is warm-up)")
    args = parser.parse_args()
    cert = issue_cert(
        SUITE,
        CA_KEY,
        CertBody("main", "alice", "bank", ("member",), SUITE.public_key(MEMBER_KEY), 0, 10**13, 1),
    )
    sender = Sender("alice", "bank", ("member",), cert.body.public_key)
    blocks = [_block(cert, b, args.txs) for b in range(args.blocks)]
    decoded: dict[bytes, tuple[bytes, Transaction]] = {}
    for raws in blocks:
        for raw in raws:
            tx = decode(raw, Transaction)
            decoded[raw] = (tx_id(SUITE, tx.body), tx)
    executor = BlockExecutor(
        suite=SUITE,
        chain_id="main",
        registry=builtin_registry(),
        authorize=lambda _cert, _now: sender,
        is_committed=lambda _tid: False,
        verify_signature=lambda _tid, _tx: True,
        decoded=decoded.get,
    )
    work = tempfile.mkdtemp(prefix="chaincity-exec-bench-")
    clock = _GcClock()
    gc.callbacks.append(clock)
    try:
        state = AuthenticatedState(LmdbStore(LmdbConfig(work, durable=False)), SUITE, window=8)
        times, cpus, gc_shares, prepares, commits = [], [], [], [], []
        for height, raws in enumerate(blocks):
            view = state.overlay()
            gc_before = clock.seconds
            started, started_cpu = time.perf_counter(), time.process_time()
            result = executor.execute_block(view, height, 1_000, raws)
            elapsed = time.perf_counter() - started
            executed_cpu = time.process_time() - started_cpu
            if len(result.receipts) != len(raws):
                raise SystemExit(f"block {height}: {len(result.skipped)} transactions skipped")
            started_cpu = time.process_time()
            update = state.prepare(view)
            prepared_cpu = time.process_time()
            state.commit(update)
            if height:
                prepares.append(prepared_cpu - started_cpu)
                commits.append(time.process_time() - prepared_cpu)
                times.append(elapsed)
                cpus.append(executed_cpu)
                gc_shares.append((clock.seconds - gc_before) / elapsed)
    finally:
        gc.callbacks.remove(clock)
        shutil.rmtree(work, ignore_errors=True)
    median = statistics.median(times)
    print(f"machine: Python {platform.python_version()}, {platform.platform()}")
    print(
        f"execution of a {args.txs}-transaction notary block (median of {len(times)}): "
        f"{median * 1000:.0f} ms, {args.txs / median:,.0f} tx/s; "
        f"cycle collector {statistics.median(gc_shares):.1%} of it; "
        f"objects tracked by the collector: {len(gc.get_objects()):,}"
    )
    print(f"the same in CPU time (what the code costs on a shared machine): "
          f"{statistics.median(cpus) * 1000:.0f} ms")  # fmt: skip
    print(
        f"then preparing its state update (root included): "
        f"{statistics.median(prepares) * 1000:.1f} ms of CPU; committing it (not durable): "
        f"{statistics.median(commits) * 1000:.1f} ms of CPU"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
