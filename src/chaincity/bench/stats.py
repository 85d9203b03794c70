"""Pure arithmetic of a benchmark run: percentiles, the warm-up cut, the
open-loop send schedule and the signature bound.

Nothing here reads a clock or a file, so every figure the bench prints can be
checked by a unit test from made-up timings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PERCENTILES = (50.0, 95.0, 99.0)
SCHEDULE_TXS_MAX = 10_000_000


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile of already sorted values (nearest rank).

    Nearest rank, not interpolation: the figure is always a latency that some
    transaction really had.
    """
    if not sorted_values:
        raise ValueError("no values")
    if not 0.0 < pct <= 100.0:
        raise ValueError("percentile must be in (0, 100]")
    rank = math.ceil(pct / 100.0 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


def latency_percentiles_s(latencies_s: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99 of the latencies, keyed ``"p50"``...; empty when there are none."""
    ordered = sorted(latencies_s)
    if not ordered:
        return {}
    return {f"p{pct:g}": percentile(ordered, pct) for pct in PERCENTILES}


@dataclass(frozen=True, slots=True)
class Throughput:
    """Committed transactions per second over the measured window."""

    txs: int
    window_s: float

    @property
    def tps(self) -> float:
        return self.txs / self.window_s if self.window_s > 0 else 0.0


def compute_throughput(
    commit_times_s: Sequence[float], load_start_s: float, warmup_s: float
) -> Throughput:
    """Transactions committed after the warm-up, over warm-up end to last commit.

    The window opens at the warm-up's end, not at the first commit after it:
    a node that admits (and verifies) a backlog before committing any of it
    must not be credited with the burst that drains the backlog. It closes
    at the last commit, so the idle drain after it does not dilute the rate.
    """
    window_start_s = load_start_s + warmup_s
    measured = [t for t in commit_times_s if t >= window_start_s]
    if not measured:
        return Throughput(0, 0.0)
    return Throughput(len(measured), max(measured) - window_start_s)


@dataclass(frozen=True, slots=True)
class BlockFigures:
    """Non-empty blocks committed after the warm-up."""

    blocks: int
    txs_mean: float
    txs_max: int
    interval_ms_mean: float | None  # by the proposers' timestamps; None for one block


def compute_block_figures(
    blocks: Sequence[tuple[int, int, float, int]], load_start_s: float, warmup_s: float
) -> BlockFigures:
    """Block count, size and spacing from (height, txs, seen at, header timestamp ms)."""
    measured = sorted(b for b in blocks if b[2] >= load_start_s + warmup_s)
    if not measured:
        return BlockFigures(0, 0.0, 0, None)
    sizes = [b[1] for b in measured]
    interval = None
    if len(measured) > 1:
        interval = (measured[-1][3] - measured[0][3]) / (len(measured) - 1)
    return BlockFigures(len(measured), sum(sizes) / len(sizes), max(sizes), interval)


def measured_latencies_s(
    submit_times_s: dict[str, float],
    commit_times_s: dict[str, float],
    load_start_s: float,
    warmup_s: float,
) -> list[float]:
    """Submit-to-commit latency of every committed transaction submitted after the warm-up."""
    window_start_s = load_start_s + warmup_s
    out = []
    for tid, submitted in submit_times_s.items():
        committed = commit_times_s.get(tid)
        if committed is not None and submitted >= window_start_s:
            out.append(max(0.0, committed - submitted))
    return out


def send_offsets_s(txs: int, rate_per_s: float) -> list[float]:
    """Open-loop schedule: when, after the start, each transaction is due.

    Due times do not depend on how fast the node answers; a sender that
    falls behind sends late, and its latency counts from the due time, so a
    slow node cannot hide its queueing delay (no coordinated omission).
    """
    if not 0 <= txs <= SCHEDULE_TXS_MAX:
        raise ValueError(f"txs must be 0..{SCHEDULE_TXS_MAX}")
    if not rate_per_s > 0:
        raise ValueError("rate must be positive")
    return [i / rate_per_s for i in range(txs)]


def due_count(offsets_s: Sequence[float], elapsed_s: float, sent: int) -> int:
    """How many of the transactions after the first ``sent`` are due at ``elapsed_s``."""
    due = sent
    while due < len(offsets_s) and offsets_s[due] <= elapsed_s:
        due += 1
    return due - sent


def signature_bound_tps(verify_per_s: float, cores: int, validators: int) -> float:
    """Committed tx/s this machine could reach if verifying signatures were all it did.

    Every validator verifies every transaction once, and all validators share
    the machine's cores.
    """
    if cores < 1 or validators < 1:
        raise ValueError("cores and validators must be positive")
    return verify_per_s * cores / validators


def fraction_of(value: float, bound: float) -> float:
    return value / bound if bound > 0 else 0.0
