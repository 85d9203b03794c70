"""`chaincity bench`: start a fresh local network, load it, print the figures."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import typer

from chaincity.bench.driver import BenchOptions, check_options, run_bench
from chaincity.bench.network import BenchError
from chaincity.bench.report import format_report, report_json
from chaincity.cli.errors import EXIT_FAILED, EXIT_USAGE, fail


def bench(
    nodes: int = typer.Option(4, help="Validators in the fresh network."),
    suite: str = typer.Option("ed25519-sha256", help="Crypto suite: ed25519-sha256 | sm2-sm3."),
    workload: str = typer.Option("notary", help="notary (record digests) | kv (put keys)."),
    txs: int = typer.Option(20_000, help="Transactions to pre-sign and submit."),
    rate: float = typer.Option(0.0, help="Open-loop submit rate in tx/s (0: as fast as admitted)."),
    max_: bool = typer.Option(False, "--max", help="Submit as fast as admitted (the default)."),
    duration: float = typer.Option(30.0, help="Stop submitting after this many seconds."),
    warmup: float = typer.Option(3.0, help="Seconds at the start left out of the figures."),
    drain: float = typer.Option(30.0, help="Seconds to wait for accepted txs to commit."),
    senders: int = typer.Option(100, help="Distinct member keys signing the transactions."),
    batch: int = typer.Option(500, help="Most transactions in one submit request."),
    tick_ms: int = typer.Option(10, help="With --rate: post the due transactions this often."),
    state_keys: int = typer.Option(
        0, help="Keys to write to the state (kv.put_many) before the clock starts."
    ),
    state_cache_pages: int = typer.Option(
        0,
        help="The nodes' state page cache bound (node.toml state_cache_pages; used only"
        " without the native state routine); 0: default.",
    ),
    verify_processes: int = typer.Option(
        0, help="Signature worker processes per node (node.toml verify_processes); 0: none."
    ),
    block_txs: int = typer.Option(
        0, help="Most transactions in a block (genesis block_txs_max); 0: the default."
    ),
    dir: Path | None = typer.Option(None, "--dir", help="Work here instead of a temp directory."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report as JSON."),
) -> None:
    """Measure committed tx/s, latency, CPU and memory of a fresh local network."""
    if max_ and rate > 0:
        fail("--rate and --max exclude each other", EXIT_USAGE)
    opts = BenchOptions(
        nodes=nodes,
        suite=suite,
        workload=workload,
        txs=txs,
        rate_per_s=rate,
        duration_s=duration,
        warmup_s=warmup,
        drain_s=drain,
        senders=senders,
        batch_txs_max=batch,
        tick_ms=tick_ms,
        state_keys=state_keys,
        state_cache_pages=state_cache_pages,
        verify_processes=verify_processes,
        block_txs=block_txs,
        dir=dir,
    )
    try:
        check_options(opts)
    except BenchError as exc:
        fail(str(exc), EXIT_USAGE)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = run_bench(opts, say=lambda line: typer.echo(line, err=True))
    except BenchError as exc:
        # Not fail(): a node's log tail is worth its line breaks.
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        fail("interrupted; every process the bench started is stopped", EXIT_FAILED)
    finally:
        signal.signal(signal.SIGTERM, previous)
    typer.echo(format_report(report))
    if json_out is not None:
        json_out.write_bytes(report_json(report))
    if not report.all_committed:
        raise typer.Exit(EXIT_FAILED)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop the nodes.
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
