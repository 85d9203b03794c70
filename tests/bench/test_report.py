"""The report: per-node figures, the measured window and the printed lines."""

from __future__ import annotations

import json
import re

import pytest

from chaincity.bench.procfs import ProcSample
from chaincity.bench.report import (
    BenchReport,
    Machine,
    RunTimes,
    compute_block_repeats,
    compute_node_figures,
    compute_signature_bound,
    compute_window,
    format_report,
    report_json,
)

MIB = 1024 * 1024


def test_node_figures_are_deltas_over_the_load() -> None:
    before = {"n1": ProcSample(1.0, 10 * MIB), "n2": ProcSample(2.0, 10 * MIB), "n3": None}
    after = {"n1": ProcSample(3.0, 50 * MIB), "n2": ProcSample(2.5, 40 * MIB), "n3": None}
    got = compute_node_figures(before, after, committed=1000)
    assert [n.name for n in got] == ["n1", "n2", "n3"]
    assert got[0].cpu_s == pytest.approx(2.0)
    assert got[0].cpu_ms_per_tx == pytest.approx(2.0)
    assert got[0].peak_rss_mib == pytest.approx(50.0)
    assert got[1].cpu_ms_per_tx == pytest.approx(0.5)
    assert (got[2].cpu_s, got[2].cpu_ms_per_tx, got[2].peak_rss_mib) == (None, None, None)


def test_no_commits_gives_no_per_tx_cost() -> None:
    got = compute_node_figures({"n": ProcSample(0, MIB)}, {"n": ProcSample(1, MIB)}, 0)
    assert got[0].cpu_ms_per_tx is None


def test_window_cuts_warmup_from_rate_and_latency() -> None:
    times = RunTimes(
        load_start_s=0.0,
        load_end_s=4.0,
        submit_times_s={"a": 0.0, "b": 1.0, "c": 2.0, "d": 3.0},
        commit_times_s={"a": 0.5, "b": 1.5, "c": 3.0, "d": 3.5},
    )
    tp, latency, count = compute_window(times, warmup_s=1.0)
    # commits at 1.5, 3.0, 3.5 after the 1 s warm-up, over 1 s .. 3.5 s
    assert tp.txs == 3
    assert tp.tps == pytest.approx(3 / 2.5)
    assert count == 3
    assert latency == {"p50": 0.5, "p95": 1.0, "p99": 1.0}


def _report(**over: object) -> BenchReport:
    fields: dict[str, object] = {
        "machine": Machine(2, "Test CPU", "3.11.7", "Linux"),
        "suite": "ed25519-sha256",
        "workload": "notary",
        "nodes": 4,
        "senders": 100,
        "mode": "max",
        "txs_planned": 1000,
        "warmup_s": 1.0,
        "load_s": 5.0,
        "submitted": 1000,
        "accepted": 990,
        "refusals": {"full": 3},
        "rejected": {"duplicate": 10},
        "transport_errors": 0,
        "committed": 990,
        "uncommitted": 0,
        "missing_sample": {},
        "tps": 200.0,
        "tps_window_s": 4.0,
        "tps_window_txs": 800,
        "latency_s": {"p50": 0.25, "p95": 0.5, "p99": 0.75},
        "latency_txs": 800,
        "blocks": 4,
        "block_txs_mean": 200.0,
        "block_txs_max": 300,
        "block_interval_ms": 1000.0,
        "block_tx_repeats": 0,
        "node_figures": compute_node_figures(
            {"org1-node1": ProcSample(0, MIB)}, {"org1-node1": ProcSample(2, 64 * MIB)}, 990
        ),
        "signature": compute_signature_bound(8000.0, 2, 4, 200.0),
        "errors": [],
    }
    fields.update(over)
    return BenchReport(**fields)  # type: ignore[arg-type]


def test_format_report_says_the_figures() -> None:
    text = format_report(_report())
    assert "200.0 tx/s (800 txs from the 1 s warm-up's end to the last commit, 4.0 s)" in text
    assert "p50 250 ms p95 500 ms p99 750 ms" in text
    assert "= 4000 tx/s; achieved 5.0% of it" in text
    assert "990 accepted (198 tx/s)" in text
    assert "refusals: full 3" in text
    assert "rejected: duplicate 10" in text
    assert "2 cores (Test CPU), Python 3.11.7" in text
    assert "org1-node1" in text and "64.0" in text
    assert (
        "blocks: 4 non-empty after the warm-up, 200 txs on average (max 300), one every 1000 ms"
        in text
    )
    assert "check: all 990 accepted transactions committed" in text
    assert "memory during" not in text
    sampled = format_report(_report(memory_mib=[(30.2, 150.4, 99.6), (60.0, 152.0, 101.0)]))
    assert "30 s 150/100, 60 s 152/101" in sampled and "memory during the run" in sampled
    assert "load process" not in text
    with_load = format_report(_report(load_cpu_s=4.95))
    assert re.search(r"load process\s+4\.95\s+5\.000\n", with_load)  # 4.95 s / 990 accepted
    assert "by phase" not in text
    phased = format_report(_report(cpu_phases_ms_per_tx={"signatures": 1.0, "execute": 0.5}))
    # The node used 2 s / 990 txs = 2.020 ms per transaction: 0.520 outside the phases.
    assert "tx (mean of the nodes): signatures 1.000, execute 0.500, rest 0.520" in phased


def test_format_report_flags_lost_transactions() -> None:
    text = format_report(_report(uncommitted=2, missing_sample={"ab" * 32: "pending"}))
    assert "check FAILED: 2 accepted transactions not committed" in text
    assert "pending" in text


def test_repeated_transactions_in_blocks_are_counted_and_shown() -> None:
    assert compute_block_repeats([3, 4, 3], committed=6) == 4
    assert compute_block_repeats([3, 3], committed=6) == 0
    assert compute_block_repeats([], committed=6) == 0
    assert "blocks repeated" not in format_report(_report())
    text = format_report(_report(block_tx_repeats=990))
    assert "blocks repeated 990 transactions" in text


def test_format_report_without_latency() -> None:
    text = format_report(_report(latency_s={}, latency_txs=0))
    assert "no transaction committed after the warm-up" in text
    assert "every commit fell within the warm-up" not in text
    short = format_report(_report(tps=0.0, tps_window_txs=0, tps_window_s=0.0))
    assert "every commit fell within the warm-up" in short


def test_report_json_is_complete() -> None:
    doc = json.loads(report_json(_report(uncommitted=1)))
    assert doc["tps"] == 200.0
    assert doc["all_committed"] is False
    assert doc["signature"]["bound_tps"] == 4000.0
    assert doc["machine"]["cores"] == 2
    assert doc["node_figures"][0]["cpu_ms_per_tx"] == pytest.approx(2000 / 990)
