"""State benchmark: key updates/s (root included, durably committed), proof size and
proof verifications/s, at 10^5 and 10^6 stored keys.

    .venv/bin/python benchmarks/state.py [--sizes 100000,1000000] [--batches 1000,10000]
        [--no-proofs] [--dir DIR] [--python] [--copy-after-pct N]

Figures, not pass/fail: run it on the machine you care about. Each figure is the median
of 5 batches; the CPU-time rate (wall time minus waiting for the CPU and for fsync) shows
what the code costs when other processes share the machine. It is split into preparing
the update (tree, hashes, root) and committing it (the LMDB transaction, pruning, fsync,
cache upkeep), with the pages written per key, so a change shows where it paid.
The tree update runs in the C routine when it is built (``--python`` forces the
Python writer); the first line says which. Before measuring a batch size, enough
versions of it run for pruning to be in its steady state (old versions' live pages
copied forward, whole versions deleted); the store's size on disk is printed after.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from typing import NamedTuple

from chaincity.crypto import get_suite
from chaincity.state import AuthenticatedState, LmdbConfig, LmdbStore, encode_proof
from chaincity.state.generations import COPY_AFTER_PCT_DEFAULT
from chaincity.state.tree import verify_state_proof
from chaincity.state.writer import NATIVE_APPLY

LOAD_BATCH = 100_000
WARM_UP_MAX = 3_000  # rounds
ROUNDS = 7
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


class Rates(NamedTuple):
    wall_per_s: float
    cpu_per_s: float
    prepare_cpu_us: float  # per key: tree update and root (StateUpdate built, nothing written)
    commit_cpu_us: float  # per key: the LMDB transaction (pruning, fsync), then cache upkeep
    pages_per_key: float
    warm_up: int  # rounds before the measured ones


def updates_per_s(state: AuthenticatedState, size: int, batch: int) -> Rates:
    """Median over ROUNDS, after warm-up rounds that bring pruning to its steady state:
    each measured commit copies forward the live pages of old sparse generations and
    deletes the generations no retained version reaches, as in a running node."""
    walls: list[float] = []
    cpus: list[float] = []
    prepares: list[float] = []
    commits: list[float] = []
    pages: list[float] = []
    warm_up, started_written = WARM_UP_MAX, _totals(state)[0]
    for round_no in range(1, WARM_UP_MAX + ROUNDS + 1):
        if round_no > warm_up + ROUNDS:
            break
        step = size // batch
        changes = [(_key(i), _value(i, batch + round_no)) for i in range(round_no, size, step)]
        changes = changes[:batch]
        started, started_cpu = time.perf_counter(), time.process_time()
        update = state.prepare_changes(state.latest_version, changes)
        prepared_cpu = time.process_time()
        state.commit(update)
        if warm_up == WARM_UP_MAX and round_no > WINDOW + 8:
            # Steady once the batches wrote more than the tree, plus what is written
            # before a generation is copied forward.
            written, live = _totals(state)
            if written - started_written > live * (100 + state.generations.copy_after_pct) // 100:
                warm_up = round_no
        elif round_no > warm_up:
            count = len(changes)
            ended_cpu = time.process_time()
            walls.append(count / (time.perf_counter() - started))
            cpus.append(count / (ended_cpu - started_cpu))
            prepares.append((prepared_cpu - started_cpu) / count * 1e6)
            commits.append((ended_cpu - prepared_cpu) / count * 1e6)
            pages.append(len(update.pages) / count)
    median = statistics.median
    return Rates(
        median(walls), median(cpus), median(prepares), median(commits), median(pages), warm_up
    )


def _totals(state: AuthenticatedState) -> tuple[int, int]:
    with state.store.read() as txn:
        return state.generations.totals(txn)


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
    size: int, base_dir: str, batches: list[int], with_proofs: bool, native: bool, pct: int
) -> None:
    path = tempfile.mkdtemp(dir=base_dir)
    try:
        store = LmdbStore(LmdbConfig(path, durable=True))
        suite = get_suite("ed25519-sha256")
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
            pages, page_bytes = disk_use(store, state)
            print(
                f"keys={size:>9,}  batch {batch:>6,}: {pages:,} tree pages stored"
                f" ({page_bytes / 2**20:,.0f} MiB) after {rates.warm_up} warm-up rounds;"
                f" window {WINDOW}, copy after {pct} %"
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
    parser.add_argument(
        "--copy-after-pct",
        type=int,
        default=COPY_AFTER_PCT_DEFAULT,
        help="writing (percent of the tree) before a sparse generation is copied forward",
    )
    args = parser.parse_args()
    native = not args.python and NATIVE_APPLY is not None
    print(f"tree update: {'native (C)' if native else 'Python'}")
    for size in (int(s) for s in args.sizes.split(",")):
        batches = [int(b) for b in args.batches.split(",")]
        run(
            size,
            args.dir or tempfile.gettempdir(),
            batches,
            not args.no_proofs,
            native,
            args.copy_after_pct,
        )


if __name__ == "__main__":
    main()
