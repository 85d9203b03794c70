"""One real bench run: four node processes on 127.0.0.1, a separate load process."""

from __future__ import annotations

from pathlib import Path

from chaincity.bench.driver import BenchOptions, run_bench
from chaincity.bench.report import format_report


def test_bench_runs_a_real_network_end_to_end(tmp_path: Path) -> None:
    opts = BenchOptions(
        nodes=4,
        txs=400,
        duration_s=15.0,
        warmup_s=0.0,
        drain_s=20.0,
        senders=8,
        verify_s=0.2,
        batch_txs_max=100,
        state_keys=2_500,  # three kv.put_many transactions before the clock starts
        dir=tmp_path,
    )
    report = run_bench(opts)
    print(format_report(report))  # the figures, for -s; no timing is asserted
    assert report.accepted == 400, report.errors
    assert report.all_committed, report.missing_sample
    assert report.committed == 400
    assert report.tps > 0
    assert set(report.latency_s) == {"p50", "p95", "p99"}
    assert report.latency_txs == 400
    assert len(report.node_figures) == 4
    assert all(n.cpu_s is not None and n.peak_rss_mib for n in report.node_figures)
    assert report.signature.bound_tps > 0
    assert report.state_keys == 2_500 and "2500 keys in the state" in format_report(report)
    # Every node executed, stored and admitted the run's transactions, and said so.
    for phase in ("execute", "state_root", "ledger_write", "admission", "signatures"):
        assert report.cpu_phases_ms_per_tx.get(phase, 0) > 0, report.cpu_phases_ms_per_tx
    assert "node CPU by phase" in format_report(report)
    # One node was asked for its status all through the run, and answered.
    assert report.api_probe is not None and report.api_probe.answered_ms
    assert "API while loaded (GET /v1/status on " in format_report(report)
