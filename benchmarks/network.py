"""Whole-network figures: the `chaincity bench` runs behind docs/performance.md.

    .venv/bin/python benchmarks/network.py [--quick] [--only TEXT] [--out DIR]

Runs each configuration of the table in turn (a fresh network each time),
prints every full report, then the table as Markdown rows. ``--only`` keeps the
runs whose label contains TEXT (e.g. ``--only n=7``). With
``--out`` each report is also written as JSON. Figures, not pass/fail: run
it on the machine you care about, with nothing else busy on it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from chaincity.bench.driver import BenchOptions, run_bench
from chaincity.bench.network import BenchError
from chaincity.bench.report import BenchReport, format_report, report_json

RUNS: list[tuple[str, BenchOptions]] = [
    ("n=1 ed25519 notary max", BenchOptions(nodes=1, txs=100_000, duration_s=60.0)),
    ("n=4 ed25519 notary max", BenchOptions(txs=60_000, duration_s=60.0)),
    ("n=7 ed25519 notary max", BenchOptions(nodes=7, txs=40_000, duration_s=60.0)),
    ("n=4 ed25519 notary 1000/s", BenchOptions(txs=30_000, rate_per_s=1000.0, duration_s=30.0)),
    ("n=4 ed25519 kv max", BenchOptions(workload="kv", txs=60_000, duration_s=60.0)),
    (
        "n=4 ed25519 notary max, 10^4 keys",
        BenchOptions(txs=60_000, duration_s=60.0, state_keys=10_000),
    ),
    (
        "n=4 ed25519 notary max, 10^6 keys",
        BenchOptions(txs=60_000, duration_s=60.0, state_keys=1_000_000),
    ),
    ("n=1 sm2-sm3 notary max", BenchOptions(nodes=1, suite="sm2-sm3", txs=20_000)),
    ("n=4 sm2-sm3 notary max", BenchOptions(suite="sm2-sm3", txs=10_000, duration_s=30.0)),
]


def _fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _row(label: str, r: BenchReport) -> str:
    lat = r.latency_s
    cpu = [n.cpu_ms_per_tx for n in r.node_figures if n.cpu_ms_per_tx is not None]
    mem = [n.peak_rss_mib for n in r.node_figures if n.peak_rss_mib is not None]
    cells = [
        label,
        f"{r.tps:.0f}",
        " / ".join(f"{lat[k] * 1000:.0f}" for k in ("p50", "p95", "p99")) if lat else "n/a",
        f"{max(cpu):.2f}" if cpu else "n/a",
        f"{max(mem):.0f}" if mem else "n/a",
        f"{r.signature.bound_tps:.0f} ({r.signature.achieved_fraction:.0%})",
        f"{r.block_txs_mean:.0f} / {_fmt_ms(r.block_interval_ms)}",
        f"{r.accepted}/{r.committed}",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the transactions")
    parser.add_argument("--out", type=Path, help="write each report as JSON here")
    parser.add_argument("--only", default="", help="only the runs whose label contains this")
    args = parser.parse_args()
    rows = []
    for label, opts in RUNS:
        if args.only not in label:
            continue
        if args.quick:
            opts = dataclasses.replace(opts, txs=opts.txs // 10, state_keys=opts.state_keys // 10)
        print(f"== {label}", flush=True)
        try:
            report = run_bench(opts, say=lambda line: print(f"   {line}", flush=True))
        except BenchError as exc:
            print(f"   failed: {exc}", flush=True)
            continue
        print(format_report(report), flush=True)
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            name = label.replace(" ", "-").replace("/", "per").replace(",", "").replace("^", "e")
            (args.out / f"{name}.json").write_bytes(report_json(report))
        rows.append(_row(label, report))
    print(
        "| run | committed tx/s | latency p50 / p95 / p99 ms | node CPU ms/tx (max) "
        "| peak MiB (max) | signature bound tx/s (achieved) | txs per block / ms between blocks "
        "| accepted/committed |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
