"""One bench run end to end: network up, transactions signed, load applied,
figures computed, every process stopped (also on Ctrl-C and on errors)."""

from __future__ import annotations

import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from chaincity.bench import phases, preload, probe, procfs, stats, workload
from chaincity.bench.loadgen import LoadPlan, LoadResult
from chaincity.bench.network import (
    BenchError,
    RunningNetwork,
    chain_height,
    find_free_base_port,
    init_options,
    start_nodes,
    stop_nodes,
    wait_ready,
)
from chaincity.bench.report import (
    BenchReport,
    Machine,
    RunTimes,
    compute_block_repeats,
    compute_node_figures,
    compute_signature_bound,
    compute_window,
)
from chaincity.client import Client, Signer
from chaincity.crypto import get_suite
from chaincity.genesis.errors import ConfigError
from chaincity.genesis.inspect import NodeView
from chaincity.genesis.network import create_network
from chaincity.genesis.node_config import dump_node_config, parse_node_config
from chaincity.types.primitives import BLOCK_TXS_MAX

NET_DIR = "net"
READY_TIMEOUT_S = 90.0
LOADGEN_SLACK_S = 60.0
EXPIRY_MARGIN_BLOCKS = 10
LOG_TAIL_BYTES = 2_000
OPEN_LOOP_IN_FLIGHT_MAX = 64  # requests a rate run keeps open at most (a max run: 8)
MEMORY_SAMPLES = 10  # resident memory of the nodes, about this many times a run
MEMORY_SAMPLE_MIN_S = 5.0
MEMORY_SAMPLES_MAX = 1_000


@dataclass(frozen=True, slots=True)
class BenchOptions:
    nodes: int = 4
    suite: str = "ed25519-sha256"
    workload: str = "notary"
    txs: int = 20_000
    rate_per_s: float = 0.0  # 0: as fast as admitted
    duration_s: float = 30.0
    warmup_s: float = 3.0
    drain_s: float = 30.0
    senders: int = 100
    verify_s: float = 1.0
    batch_txs_max: int = 500
    tick_ms: int = 10
    state_keys: int = 0  # written (kv.put_many) before the clock starts
    state_cache_pages: int = 0  # the nodes' state page cache bound; 0: their default
    verify_processes: int = 0  # the nodes' signature worker processes; 0: none
    block_txs: int = 0  # the network's block_txs_max (genesis); 0: the default
    dir: Path | None = None  # None: a temp directory, removed afterwards


def check_options(opts: BenchOptions) -> None:
    """Raise BenchError for options that cannot make a run."""
    if opts.workload not in workload.WORKLOADS:
        raise BenchError(f"--workload must be one of {', '.join(workload.WORKLOADS)}")
    if not 1 <= opts.nodes <= 64:
        raise BenchError("--nodes must be 1..64")
    if not 1 <= opts.txs <= workload.TXS_MAX:
        raise BenchError(f"--txs must be 1..{workload.TXS_MAX}")
    if not 1 <= opts.senders <= workload.SENDERS_MAX:
        raise BenchError(f"--senders must be 1..{workload.SENDERS_MAX}")
    if opts.rate_per_s < 0 or not 0 < opts.duration_s <= 24 * 3600:
        raise BenchError("--rate must be >= 0 and --duration within (0, 86400] s")
    if not 0 <= opts.warmup_s < opts.duration_s or not 0 <= opts.drain_s <= 3600:
        raise BenchError("--warmup must be shorter than --duration; --drain 0..3600 s")
    if not 1 <= opts.batch_txs_max <= 5_000:
        raise BenchError("--batch must be 1..5000")
    if not 1 <= opts.tick_ms <= 10_000:
        raise BenchError("--tick-ms must be 1..10000")
    if opts.state_cache_pages and not 1_000 <= opts.state_cache_pages <= 100_000_000:
        raise BenchError("--state-cache-pages must be 0 (the default) or 1000..100000000")
    if not 0 <= opts.verify_processes <= 64:
        raise BenchError("--verify-processes must be 0..64")
    if not 0 <= opts.block_txs <= BLOCK_TXS_MAX:
        raise BenchError(f"--block-txs must be 0 (the default) or 1..{BLOCK_TXS_MAX}")
    if not 0 <= opts.state_keys <= preload.STATE_KEYS_MAX:
        raise BenchError(f"--state-keys must be 0..{preload.STATE_KEYS_MAX}")


def machine_info() -> Machine:
    return Machine(_cores(), procfs.cpu_model(), platform.python_version(), platform.platform())


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def run_bench(opts: BenchOptions, say: Callable[[str], None] = lambda _: None) -> BenchReport:
    check_options(opts)
    work = opts.dir if opts.dir is not None else Path(tempfile.mkdtemp(prefix="chaincity-bench-"))
    try:
        return _run_in(work, opts, say)
    finally:
        if opts.dir is None:
            shutil.rmtree(work, ignore_errors=True)


def _run_in(work: Path, opts: BenchOptions, say: Callable[[str], None]) -> BenchReport:
    root = work / NET_DIR
    base = find_free_base_port(2 * opts.nodes, random.Random())
    try:
        init = init_options(opts.nodes, opts.suite, base, opts.block_txs)
        view = create_network(root, init, _now_ms(), False)
    except ConfigError as exc:
        raise BenchError(str(exc)) from None
    say(f"network of {opts.nodes} in {root}, ports {base}..{base + 2 * opts.nodes - 1}")
    if opts.state_cache_pages or opts.verify_processes:
        _set_node_options(view.nodes, opts)
    net = start_nodes(view)
    try:
        signers = workload.make_signers(root, view.genesis, opts.senders, _now_ms())
        status = wait_ready(net, READY_TIMEOUT_S)
        height = chain_height(status) or 0
        if opts.state_keys:
            _preload(net, signers, opts.state_keys, height, say)
            height = chain_height(wait_ready(net, READY_TIMEOUT_S)) or 0
        say(f"nodes connected at height {height}; signing {opts.txs} transactions")
        expiry = height + view.genesis.params.tx_expiry_blocks_max - EXPIRY_MARGIN_BLOCKS
        raws = workload.presign(
            signers, workload.get_workload(opts.workload), opts.txs, expiry, f"{_now_ms()}"
        )
        verify_per_s = workload.measure_verify_per_s(get_suite(opts.suite), raws, opts.verify_s)
        say(f"one core verifies {verify_per_s:.0f} signatures/s; applying load")
        phases_before = [phases.read_cpu_phases(url) for url in net.api_urls]
        before = {name: procfs.sample(pid) for name, pid in net.pids().items()}
        memory: list[tuple[float, float, float]] = []
        prober = probe.Prober(view.nodes[-1].config.name, net.api_urls[-1])
        result = _apply_load(work, net, raws, opts, height + 1, memory, prober)
        after = {name: procfs.sample(pid) for name, pid in net.pids().items()}
        phases_after = [phases.read_cpu_phases(url) for url in net.api_urls]
        exited = net.exited()
    finally:
        stop_nodes(net)
    errors = [f"node {n} exited with {c} during the run" for n, c in exited.items()]
    if result.rejected.get("expired") or result.uncommitted:
        top = max((b[0] for b in result.blocks), default=0)
        errors.append(
            f"transactions were signed to expire at height {expiry} (genesis allows "
            f"{view.genesis.params.tx_expiry_blocks_max} blocks ahead) and the last non-empty "
            f"block seen was at height {top}; if the chain passed the expiry, that is why"
        )
    report = _build_report(opts, result, before, after, verify_per_s, errors + result.errors)
    by_phase = phases.compute_phase_figures(phases_before, phases_after, len(result.commit_times_s))
    return msgspec.structs.replace(
        report,
        memory_mib=memory,
        load_cpu_s=result.cpu_s,
        cpu_phases_ms_per_tx=by_phase,
        api_probe=prober.result(),
        block_txs_limit=view.genesis.params.block_txs_max,
    )


def _set_node_options(nodes: Sequence[NodeView], opts: BenchOptions) -> None:
    for node in nodes:
        written = parse_node_config(node.config_path.read_bytes(), str(node.config_path))
        changed = msgspec.structs.replace(
            written,
            state_cache_pages=opts.state_cache_pages or written.state_cache_pages,
            verify_processes=opts.verify_processes,
        )
        node.config_path.write_bytes(dump_node_config(changed))


def _preload(
    net: RunningNetwork,
    signers: list[Signer],
    keys: int,
    height: int,
    say: Callable[[str], None],
) -> None:
    expiry = height + net.view.genesis.params.tx_expiry_blocks_max - EXPIRY_MARGIN_BLOCKS
    raws = preload.build_preload(signers, keys, expiry, f"{_now_ms()}")
    say(f"writing {keys} keys to the state ({len(raws)} transactions) before the run")
    clients = [Client(url, net.view.genesis.network_id, timeout_s=60) for url in net.api_urls]
    started_s = time.monotonic()
    try:
        preload.preload_state(clients, raws, say)
    except preload.PreloadError as exc:
        raise BenchError(str(exc)) from None
    say(f"state written in {time.monotonic() - started_s:.0f} s")


def _wait_sampling(
    proc: subprocess.Popen[bytes],
    net: RunningNetwork,
    opts: BenchOptions,
    memory: list[tuple[float, float, float]],
    prober: probe.Prober,
) -> int | None:
    """Wait for the load process, sampling the nodes' resident memory and one node's
    answer time meanwhile; its exit code, or None if it overran."""
    started_s = time.monotonic()
    deadline_s = started_s + opts.duration_s + opts.drain_s + LOADGEN_SLACK_S
    period_s = max(MEMORY_SAMPLE_MIN_S, opts.duration_s / MEMORY_SAMPLES)
    next_sample_s = started_s + period_s
    while True:
        now = time.monotonic()
        wait_s = min(probe.PROBE_PERIOD_S, next_sample_s - now, deadline_s - now)
        try:
            return proc.wait(timeout=max(0.0, wait_s))
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline_s:
                return None
        prober.ask()
        if time.monotonic() < next_sample_s:
            continue
        next_sample_s += period_s
        samples = [procfs.sample(pid) for pid in net.pids().values()]
        rss = [(s.rss_bytes, s.anon_bytes) for s in samples if s is not None]
        if rss and len(memory) < MEMORY_SAMPLES_MAX:
            total, anon = max(rss)
            memory.append((time.monotonic() - started_s, total / 2**20, anon / 2**20))


def _apply_load(
    work: Path,
    net: RunningNetwork,
    raws: list[bytes],
    opts: BenchOptions,
    first_height: int,
    memory: list[tuple[float, float, float]],
    prober: probe.Prober,
) -> LoadResult:
    plan = LoadPlan(
        net.api_urls,
        net.view.genesis.network_id,
        raws,
        opts.rate_per_s,
        opts.duration_s,
        opts.drain_s,
        opts.batch_txs_max,
        # As fast as admitted: a few senders keep the nodes busy. Open loop: a sender
        # per request in flight, so that requests a busy node holds do not hold back
        # what falls due meanwhile (the schedule, not the nodes, sets the pace).
        in_flight_max=8 if opts.rate_per_s <= 0 else OPEN_LOOP_IN_FLIGHT_MAX,
        tick_s=opts.tick_ms / 1000,
        first_height=first_height,
    )
    plan_path, result_path, log_path = work / "plan.bin", work / "result.bin", work / "load.log"
    plan_path.write_bytes(msgspec.msgpack.encode(plan))
    cmd = [sys.executable, "-m", "chaincity.bench.loadgen", str(plan_path), str(result_path)]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            code = _wait_sampling(proc, net, opts, memory, prober)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if code != 0 or not result_path.exists():
        tail = log_path.read_bytes()[-LOG_TAIL_BYTES:].decode("utf-8", "replace")
        raise BenchError(f"the load process failed (exit {code}):\n{tail}")
    return msgspec.msgpack.decode(result_path.read_bytes(), type=LoadResult)


def _build_report(
    opts: BenchOptions,
    result: LoadResult,
    before: dict[str, procfs.ProcSample | None],
    after: dict[str, procfs.ProcSample | None],
    verify_per_s: float,
    errors: list[str],
) -> BenchReport:
    times = RunTimes(
        result.load_start_s, result.load_end_s, result.submit_times_s, result.commit_times_s
    )
    throughput, latency, latency_txs = compute_window(times, opts.warmup_s)
    blocks = stats.compute_block_figures(result.blocks, result.load_start_s, opts.warmup_s)
    committed = len(result.commit_times_s)
    machine = machine_info()
    accepted = len(result.submit_times_s)
    return BenchReport(
        machine=machine,
        suite=opts.suite,
        workload=opts.workload,
        nodes=opts.nodes,
        senders=opts.senders,
        mode=f"rate {opts.rate_per_s:g}/s" if opts.rate_per_s > 0 else "max",
        txs_planned=opts.txs,
        warmup_s=opts.warmup_s,
        load_s=result.load_end_s - result.load_start_s,
        submitted=opts.txs - result.not_sent,
        accepted=accepted,
        refusals=result.refusals,
        rejected=result.rejected,
        transport_errors=result.transport_errors,
        committed=committed,
        uncommitted=result.uncommitted,
        missing_sample=result.missing,
        tps=throughput.tps,
        tps_window_s=throughput.window_s,
        tps_window_txs=throughput.txs,
        latency_s=latency,
        latency_txs=latency_txs,
        blocks=blocks.blocks,
        block_txs_mean=blocks.txs_mean,
        block_txs_max=blocks.txs_max,
        block_interval_ms=blocks.interval_ms_mean,
        block_tx_repeats=compute_block_repeats([b[1] for b in result.blocks], committed),
        node_figures=compute_node_figures(before, after, committed),
        signature=compute_signature_bound(verify_per_s, machine.cores, opts.nodes, throughput.tps),
        errors=errors,
        state_keys=opts.state_keys,
    )
