"""Figures of a run from made-up timings: percentiles, warm-up cut, schedule, bound."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaincity.bench import stats


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert stats.percentile(values, 50) == 50.0
    assert stats.percentile(values, 95) == 95.0
    assert stats.percentile(values, 99) == 99.0
    assert stats.percentile(values, 100) == 100.0
    assert stats.percentile([7.0], 50) == 7.0


def test_percentile_refuses_empty_and_bad_pct() -> None:
    with pytest.raises(ValueError):
        stats.percentile([], 50)
    with pytest.raises(ValueError):
        stats.percentile([1.0], 0)
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=200), st.floats(0.01, 100))
def test_percentile_is_a_value_with_enough_below(values: list[float], pct: float) -> None:
    ordered = sorted(values)
    p = stats.percentile(ordered, pct)
    assert p in ordered
    assert sum(1 for v in ordered if v <= p) >= pct / 100 * len(ordered)


def test_latency_percentiles_keys_and_empty() -> None:
    got = stats.latency_percentiles_s([0.3, 0.1, 0.2, 0.4])
    assert got == {"p50": 0.2, "p95": 0.4, "p99": 0.4}
    assert stats.latency_percentiles_s([]) == {}


def test_throughput_excludes_warmup_and_ends_at_last_commit() -> None:
    # load starts at 100 s, warm-up 2 s: commits before 102 s do not count,
    # and the window is 102 s .. 106 s even though the first commit after it is at 103 s.
    commits = [100.5, 101.9, 103.0, 103.0, 104.0, 106.0]
    tp = stats.compute_throughput(commits, load_start_s=100.0, warmup_s=2.0)
    assert tp.txs == 4
    assert tp.window_s == pytest.approx(4.0)
    assert tp.tps == pytest.approx(1.0)


def test_throughput_with_nothing_after_warmup_is_zero() -> None:
    tp = stats.compute_throughput([1.0, 2.0], load_start_s=0.0, warmup_s=5.0)
    assert (tp.txs, tp.window_s, tp.tps) == (0, 0.0, 0.0)


@given(st.lists(st.floats(0, 100), max_size=100), st.floats(0, 50))
def test_throughput_never_counts_more_than_was_committed(
    commits: list[float], warmup: float
) -> None:
    tp = stats.compute_throughput(commits, 0.0, warmup)
    assert 0 <= tp.txs <= len(commits)
    assert tp.window_s >= 0 and tp.tps >= 0


def test_latencies_only_for_committed_txs_submitted_after_warmup() -> None:
    submits = {"a": 10.0, "b": 12.5, "c": 13.0, "d": 14.0}
    commits = {"a": 11.0, "b": 13.0, "c": 15.5}  # d never committed
    got = stats.measured_latencies_s(submits, commits, load_start_s=10.0, warmup_s=2.0)
    assert sorted(got) == [0.5, 2.5]


def test_send_offsets_follow_the_rate() -> None:
    assert stats.send_offsets_s(4, 2.0) == [0.0, 0.5, 1.0, 1.5]
    assert stats.send_offsets_s(0, 10.0) == []
    with pytest.raises(ValueError):
        stats.send_offsets_s(3, 0.0)
    with pytest.raises(ValueError):
        stats.send_offsets_s(-1, 1.0)


def test_due_count_releases_what_is_due_and_no_more() -> None:
    offsets = stats.send_offsets_s(10, 100.0)  # one every 10 ms
    assert stats.due_count(offsets, 0.0, 0) == 1
    assert stats.due_count(offsets, 0.045, 0) == 5
    assert stats.due_count(offsets, 0.045, 5) == 0
    assert stats.due_count(offsets, 5.0, 5) == 5  # a late sender catches up, up to the end


@given(st.integers(1, 500), st.floats(1, 1e5), st.floats(0, 10))
def test_schedule_never_releases_early(txs: int, rate: float, elapsed: float) -> None:
    offsets = stats.send_offsets_s(txs, rate)
    n = stats.due_count(offsets, elapsed, 0)
    assert all(o <= elapsed for o in offsets[:n])
    assert n == txs or offsets[n] > elapsed


def test_signature_bound_arithmetic() -> None:
    # 8,000 verify/s per core, 2 cores, 4 validators each verifying every tx.
    assert stats.signature_bound_tps(8000.0, 2, 4) == pytest.approx(4000.0)
    assert stats.fraction_of(1000.0, 4000.0) == pytest.approx(0.25)
    assert stats.fraction_of(1.0, 0.0) == 0.0
    with pytest.raises(ValueError):
        stats.signature_bound_tps(1.0, 0, 4)


def test_block_figures_after_warmup() -> None:
    # (height, txs, seen at s, header timestamp ms); warm-up ends at 2 s.
    blocks = [(1, 50, 1.0, 900), (2, 100, 2.5, 2_000), (4, 300, 3.5, 3_000), (5, 200, 4.2, 4_000)]
    got = stats.compute_block_figures(blocks, load_start_s=0.0, warmup_s=2.0)
    assert got == stats.BlockFigures(3, 200.0, 300, 1000.0)
    one = stats.compute_block_figures(blocks[-1:], 0.0, 2.0)
    assert (one.blocks, one.interval_ms_mean) == (1, None)
    assert stats.compute_block_figures([], 0.0, 0.0).blocks == 0
