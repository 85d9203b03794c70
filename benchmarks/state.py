"""State benchmark: key updates/s (root included, durably committed), proof size and
proof verifications/s, at 10^5 and 10^6 stored keys.

    .venv/bin/python benchmarks/state.py [--sizes 100000,1000000] [--batches 1000,10000]
        [--no-proofs] [--dir DIR] [--python] [--copy-after-pct N] [--suite sm2-sm3]

Each batch size is measured twice, in turns: each update committed before the next is
prepared, as the ledger commits a block; and committed behind
(``AuthenticatedState.commit_behind``), where the next update is prepared while the
commit before it writes and fsyncs, on the writer's thread. Both are durable: a
committed-behind version counts once its commit has returned.

Figures, not pass/fail: run it on the machine you care about. Each measured batch
size is followed by how fast one core hashed around its rounds: on a shared
machine that can change by half within minutes, so compare runs by it. Each figure is taken
over 10-40 batches together; the CPU-time rate (wall time minus waiting for the CPU
and for fsync) shows what the code costs when other processes share the machine. It
is split into preparing the update (tree, hashes, root) and committing it (the LMDB
transaction, pruning, fsync, cache upkeep), with the pages written per key, so a
change shows where it paid.
The tree update runs in the C routine when it is built (``--python`` forces the
Python writer); the first line says which, and how it hashes. Before measuring a batch size, enough
batches of it run for pruning by generation to reach its steady state (no generation
written before them left); the tree pages stored are printed after.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import shutil
import statistics
import tempfile
import time
from typing import NamedTuple

from chaincity.crypto import SUITE_NAMES, CryptoSuite, get_suite
from chaincity.state import AuthenticatedState, LmdbConfig, LmdbStore, encode_proof
from chaincity.state.generations import COPY_AFTER_PCT_DEFAULT
from chaincity.state.store import StateUpdate
from chaincity.state.tree import verify_state_proof
from chaincity.state.writer import NATIVE_APPLY, native_digest_name

LOAD_BATCH = 100_000
WARM_UP_MAX = 3_000  # rounds
WINDOW = 4
PROOFS = 2_000


def _key(i: int) -> bytes:
    return b"\x05bench" + i.to_bytes(8, "big")


def _value(i: int, round_no: int) -> bytes:
    return (i * 7919 + round_no).to_bytes(8, "big") * 8  # 64-byte values


def load(state: AuthenticatedState, size: int) -> float:
    started = time.perf_counter()
    for start in range(0, size, LOAD_BATCH):
        changes = [(_key(i), _value(i, 0)) for i in range(start, min(size, start + LOAD_BATCH))]
        state.commit(state.prepare_changes(state.latest_version, changes))
    return time.perf_counter() - started


def yardstick() -> float:
    """SHA-256 hashes of 64 bytes per second on this core, now: how fast the machine runs
    at the moment (on a shared machine it can change by half within minutes)."""
    data, count = bytes(64), 20_000
    started = time.perf_counter()
    for _ in range(count):
        hashlib.sha256(data).digest()
    return count / (time.perf_counter() - started)


class Rates(NamedTuple):
    wall_per_s: float
    cpu_per_s: float
    behind_wall_per_s: float  # committing behind: the next update prepared during a commit
    behind_cpu_per_s: float
    prepare_cpu_us: float  # per key: tree update and root (StateUpdate built, nothing written)
    commit_cpu_us: float  # per key: the LMDB transaction (pruning, fsync), then cache upkeep
    pages_per_key: float
    warm_up: int  # rounds before the measured ones
    yardstick: float  # hashes/s, the mean of before and after the measured rounds


def _changes(size: int, batch: int, round_no: int) -> list[tuple[bytes, bytes]]:
    """``batch`` keys spread over all ``size``, new values for each round."""
    step = size // batch
    changes = [(_key(i), _value(i, batch + round_no)) for i in range(round_no, size, step)]
    return changes[:batch]


def _round(state: AuthenticatedState, size: int, batch: int, round_no: int) -> StateUpdate:
    update = state.prepare_changes(state.latest_version, _changes(size, batch, round_no))
    state.commit(update)
    return update


def _oldest_generation(state: AuthenticatedState) -> int | None:
    with state.store.read() as txn:
        return min(state.generations.counts(txn), default=None)


def updates_per_s(state: AuthenticatedState, size: int, batch: int) -> Rates:
    """Rates over the measured rounds taken together (copying forward comes in bursts,
    which a median would hide), after warm-up rounds that bring pruning to its steady
    state: until no generation written before this batch size's first rounds is left,
    so that what is copied forward and deleted is what these batches cause."""
    first = (state.latest_version or 0) + 1
    warm_up = 0
    while warm_up < WARM_UP_MAX:
        warm_up += 1
        _round(state, size, batch, warm_up)
        oldest = _oldest_generation(state)
        # Steady once the generations of these batches are being copied forward too.
        if warm_up > WINDOW + 8 and (oldest is None or oldest > first + WINDOW):
            break
    rounds = min(40, max(10, 40_000 // batch))
    before = yardstick()
    wall = cpu = prepare = commit = 0.0
    pages = keys = 0
    behind_wall = behind_cpu = 0.0
    behind_keys = 0
    round_no = warm_up
    # The two ways of committing take turns, half of the rounds at a time, so that a
    # change in the machine's speed falls on both.
    for _turn in range(2):
        for _ in range(rounds // 2):
            round_no += 1
            changes = _changes(size, batch, round_no)
            started, started_cpu = time.perf_counter(), time.process_time()
            update = state.prepare_changes(state.latest_version, changes)
            prepared_cpu = time.process_time()
            state.commit(update)
            ended_cpu = time.process_time()
            wall += time.perf_counter() - started
            cpu += ended_cpu - started_cpu
            prepare += prepared_cpu - started_cpu
            commit += ended_cpu - prepared_cpu
            pages += len(update.pages)
            keys += len(changes)
        batches = [_changes(size, batch, round_no + i + 1) for i in range(rounds // 2)]
        round_no += len(batches)
        started, started_cpu = time.perf_counter(), time.process_time()
        for changes in batches:
            state.commit_behind(state.prepare_changes(state.tip_version, changes))
        state.settle()  # the last one is durable too
        behind_wall += time.perf_counter() - started
        behind_cpu += time.process_time() - started_cpu
        behind_keys += sum(map(len, batches))
    speed = (before + yardstick()) / 2
    return Rates(
        keys / wall,
        keys / cpu,
        behind_keys / behind_wall,
        behind_keys / behind_cpu,
        prepare / keys * 1e6,
        commit / keys * 1e6,
        pages / keys,
        warm_up,
        speed,
    )


def proofs(state: AuthenticatedState, size: int) -> tuple[float, float, float]:
    suite = state.suite
    root = state.root()
    keys = [_key(i * (size // PROOFS)) for i in range(PROOFS // 2)]
    keys += [b"\x05absent" + i.to_bytes(8, "big") for i in range(PROOFS // 2)]
    made = [(key, *state.prove(key)) for key in keys]
    sizes = [len(encode_proof(proof)) for _key_, _value_, proof in made]
    started = time.perf_counter()
    for key, value, proof in made:
        if not verify_state_proof(suite, root, key, value, proof):
            raise SystemExit(f"proof for {key!r} did not verify")
    rate = len(made) / (time.perf_counter() - started)
    return statistics.mean(sizes), float(max(sizes)), rate


def disk_use(store: LmdbStore, state: AuthenticatedState) -> tuple[int, int]:
    """(tree pages stored, their bytes): the latest tree and what pruning keeps besides."""
    count = size = 0
    with store.read() as txn:
        for _, raw in txn.scan(state.tables["nodes"]):
            count += 1
            size += len(raw)
    return count, size


def run(
    size: int,
    base_dir: str,
    batches: list[int],
    with_proofs: bool,
    native: bool,
    pct: int,
    suite: CryptoSuite,
) -> None:
    path = tempfile.mkdtemp(dir=base_dir)
    try:
        store = LmdbStore(LmdbConfig(path, durable=True))
        state = AuthenticatedState(store, suite, window=WINDOW, native=native, copy_after_pct=pct)
        load_s = load(state, size)
        print(f"keys={size:>9,}  load {load_s:6.1f} s ({size / load_s:,.0f} keys/s)")
        for batch in batches:
            rates = updates_per_s(state, size, batch)
            print(
                f"keys={size:>9,}  batch {batch:>6,}: {rates.wall_per_s:>9,.0f} key updates/s"
                f" (durable); {rates.cpu_per_s:>9,.0f}/s of this process's CPU time"
                f" (per key: prepare {rates.prepare_cpu_us:.1f} us, commit"
                f" {rates.commit_cpu_us:.1f} us of CPU; {rates.pages_per_key:.2f} pages written)"
            )
            print(
                f"keys={size:>9,}  batch {batch:>6,}: {rates.behind_wall_per_s:>9,.0f}"
                " key updates/s (durable, committed behind);"
                f" {rates.behind_cpu_per_s:>9,.0f}/s of CPU time;"
                f" {rates.behind_wall_per_s / rates.wall_per_s:.2f} x the line above,"
                " in turns with it"
            )
            pages, page_bytes = disk_use(store, state)
            print(
                f"keys={size:>9,}  batch {batch:>6,}: {pages:,} tree pages stored"
                f" ({page_bytes / 2**20:,.0f} MiB) after {rates.warm_up} warm-up rounds;"
                f" window {WINDOW}, copy after {pct} %"
            )
            print(
                f"keys={size:>9,}  batch {batch:>6,}: machine speed around these rounds"
                f" {rates.yardstick / 1e6:.2f} M SHA-256/s of 64 bytes on one core"
                " (compare runs by it)"
            )
        if with_proofs:
            mean_b, max_b, verify_rate = proofs(state, size)
            print(
                f"keys={size:>9,}  proof size mean {mean_b:.0f} B, max {max_b:.0f} B;"
                f" {verify_rate:,.0f} verifications/s"
            )
        rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"keys={size:>9,}  peak memory {rss_mib:,.0f} MiB (whole process so far)")
        store.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--batches", default="1000,10000", help="keys per update")
    parser.add_argument("--no-proofs", action="store_true", help="skip the proof figures")
    parser.add_argument("--dir", default=None, help="where to put the temporary LMDB")
    parser.add_argument("--python", action="store_true", help="use the Python tree writer")
    parser.add_argument("--suite", default="ed25519-sha256", choices=SUITE_NAMES)
    parser.add_argument(
        "--copy-after-pct",
        type=int,
        default=COPY_AFTER_PCT_DEFAULT,
        help="writing (percent of the tree) before a sparse generation is copied forward",
    )
    args = parser.parse_args()
    native = not args.python and NATIVE_APPLY is not None
    suite = get_suite(args.suite)
    if not native:
        hashing = "the suite's hash"
    elif native_digest_name(suite) is not None:
        hashing = f"OpenSSL's {native_digest_name(suite)}"
    elif suite.hash_constructor is not None:
        hashing = "the suite's hash constructor"
    else:
        hashing = "the suite's hash, called from C"
    writer = "native (C)" if native else "Python"
    print(f"tree update: {writer}; {args.suite}, hashing with {hashing}")
    for size in (int(s) for s in args.sizes.split(",")):
        batches = [int(b) for b in args.batches.split(",")]
        run(
            size,
            args.dir or tempfile.gettempdir(),
            batches,
            not args.no_proofs,
            native,
            args.copy_after_pct,
            suite,
        )


if __name__ == "__main__":
    main()
