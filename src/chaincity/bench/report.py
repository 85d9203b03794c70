"""What a bench run reports, built from raw timings by pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from chaincity.bench import stats
from chaincity.bench.phases import format_phases
from chaincity.bench.probe import ApiProbe, format_probe
from chaincity.bench.procfs import ProcSample

MIB = 1024 * 1024


class Machine(msgspec.Struct, frozen=True):
    cores: int
    cpu_model: str
    python: str
    platform: str


class NodeFigures(msgspec.Struct, frozen=True):
    name: str
    cpu_s: float | None
    cpu_ms_per_tx: float | None
    peak_rss_mib: float | None


class SignatureBound(msgspec.Struct, frozen=True):
    verify_per_s_one_core: float
    cores: int
    validators: int
    bound_tps: float
    achieved_fraction: float


class BenchReport(msgspec.Struct, frozen=True):
    machine: Machine
    suite: str
    workload: str
    nodes: int
    senders: int
    mode: str  # "max" or "rate R/s"
    txs_planned: int
    warmup_s: float
    load_s: float
    submitted: int
    accepted: int
    refusals: dict[str, int]
    rejected: dict[str, int]
    transport_errors: int
    committed: int
    uncommitted: int
    missing_sample: dict[str, str]
    tps: float
    tps_window_s: float
    tps_window_txs: int
    latency_s: dict[str, float]
    latency_txs: int
    blocks: int  # non-empty blocks committed after the warm-up
    block_txs_mean: float
    block_txs_max: int
    block_interval_ms: float | None
    block_tx_repeats: int  # transaction slots in blocks beyond one per committed transaction
    node_figures: list[NodeFigures]
    signature: SignatureBound
    errors: list[str]
    state_keys: int = 0  # keys written before the clock started
    load_cpu_s: float = 0.0  # CPU time of the load process (it shares the machine)
    # (seconds since the load started, resident MiB, of which anonymous) of the node
    # with the most resident memory, sampled through the run
    memory_mib: list[tuple[float, float, float]] = msgspec.field(default_factory=list)
    # milliseconds of node CPU per committed transaction, by phase of the nodes' work
    cpu_phases_ms_per_tx: dict[str, float] = msgspec.field(default_factory=dict)
    api_probe: ApiProbe | None = None  # a node's answer times to a query during the run
    block_txs_limit: int = 0  # the network's block_txs_max (0: not recorded)

    @property
    def all_committed(self) -> bool:
        return self.uncommitted == 0


@dataclass(frozen=True, slots=True)
class RunTimes:
    """Raw times of one load run, in the load process's monotonic seconds."""

    load_start_s: float
    load_end_s: float
    submit_times_s: dict[str, float]
    commit_times_s: dict[str, float]


def compute_block_repeats(block_txs: list[int], committed: int) -> int:
    """Slots taken by repeats: on a fresh network every slot should hold a distinct bench tx."""
    return max(0, sum(block_txs) - committed)


def compute_node_figures(
    before: Mapping[str, ProcSample | None],
    after: Mapping[str, ProcSample | None],
    committed: int,
) -> list[NodeFigures]:
    """CPU seconds over the load (and per committed transaction) and peak memory per node."""
    out = []
    for name in sorted(before):
        b, a = before[name], after.get(name)
        cpu_s = a.cpu_s - b.cpu_s if a is not None and b is not None else None
        per_tx = cpu_s * 1000 / committed if cpu_s is not None and committed else None
        rss = a.peak_rss_bytes / MIB if a is not None else None
        out.append(NodeFigures(name, cpu_s, per_tx, rss))
    return out


def compute_signature_bound(
    verify_per_s: float, cores: int, validators: int, tps: float
) -> SignatureBound:
    bound = stats.signature_bound_tps(verify_per_s, cores, validators)
    return SignatureBound(verify_per_s, cores, validators, bound, stats.fraction_of(tps, bound))


def compute_window(
    times: RunTimes, warmup_s: float
) -> tuple[stats.Throughput, dict[str, float], int]:
    """Throughput, latency percentiles and how many latencies they cover."""
    throughput = stats.compute_throughput(
        list(times.commit_times_s.values()), times.load_start_s, warmup_s
    )
    latencies = stats.measured_latencies_s(
        times.submit_times_s, times.commit_times_s, times.load_start_s, warmup_s
    )
    return throughput, stats.latency_percentiles_s(latencies), len(latencies)


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:.0f}" if seconds > 0 else "n/a"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def format_report(r: BenchReport) -> str:
    """The report as the lines ``chaincity bench`` prints."""
    m, sig = r.machine, r.signature
    lines = [
        f"chaincity bench: {r.nodes} validators, suite {r.suite}, workload {r.workload}, "
        f"{r.mode}, {r.senders} senders"
        + (f", {r.state_keys} keys in the state before the run" if r.state_keys else ""),
        f"machine: {m.cores} cores ({m.cpu_model}), Python {m.python}, {m.platform}",
        f"load: {r.load_s:.1f} s, {r.txs_planned} planned, {r.submitted} submitted, "
        f"{r.accepted} accepted ({_rate(r.accepted, r.load_s)} tx/s); "
        f"refusals: {_counts(r.refusals)}; rejected: {_counts(r.rejected)}; "
        f"transport errors {r.transport_errors}",
        f"committed: {r.tps:.1f} tx/s ({r.tps_window_txs} txs from the {r.warmup_s:g} s "
        f"warm-up's end to the last commit, {r.tps_window_s:.1f} s)",
    ]
    if r.committed and not r.tps_window_txs:
        lines.append("  (every commit fell within the warm-up: use more --txs or a lower --rate)")
    if r.latency_s:
        pcts = " ".join(f"{k} {v * 1000:.0f} ms" for k, v in r.latency_s.items())
        lines.append(f"submit-to-commit latency: {pcts} (of {r.latency_txs} txs)")
    else:
        lines.append("submit-to-commit latency: no transaction committed after the warm-up")
    if r.blocks:
        every = "" if r.block_interval_ms is None else f", one every {r.block_interval_ms:.0f} ms"
        lines.append(
            f"blocks: {r.blocks} non-empty after the warm-up, {r.block_txs_mean:.0f} txs on "
            f"average (max {r.block_txs_max}){every}"
        )
    if r.block_tx_repeats:
        lines.append(
            f"blocks repeated {r.block_tx_repeats} transactions: the same transaction "
            "in more than one block (later copies are skipped at execution)"
        )
    lines.append(
        f"signature bound: {sig.verify_per_s_one_core:.0f} verify/s on one core x "
        f"{sig.cores} cores / {sig.validators} validators = {sig.bound_tps:.0f} tx/s; "
        f"achieved {sig.achieved_fraction:.1%} of it"
    )
    lines.append(f"{'node':<16}{'cpu s':>9}{'cpu ms/tx':>11}{'peak MiB':>10}")
    for n in r.node_figures:
        lines.append(
            f"{n.name:<16}{_fmt(n.cpu_s, '9.2f')}{_fmt(n.cpu_ms_per_tx, '11.3f')}"
            f"{_fmt(n.peak_rss_mib, '10.1f')}"
        )
    if r.load_cpu_s:
        lines.append(
            f"{'load process':<16}{r.load_cpu_s:9.2f}"
            f"{_fmt(r.load_cpu_s * 1000 / r.accepted if r.accepted else None, '11.3f')}"
        )
    if r.cpu_phases_ms_per_tx:
        per_tx = [n.cpu_ms_per_tx for n in r.node_figures if n.cpu_ms_per_tx is not None]
        mean = sum(per_tx) / len(per_tx) if per_tx else None
        lines.append(format_phases(r.cpu_phases_ms_per_tx, mean))
    if r.api_probe is not None:
        lines.append(format_probe(r.api_probe))
    if r.memory_mib:
        points = ", ".join(f"{t:.0f} s {mib:.0f}/{anon:.0f}" for t, mib, anon in r.memory_mib)
        lines.append(
            "memory during the run (largest node, resident MiB / of which heap, the rest "
            f"mostly the mapped ledger file): {points}"
        )
    if r.all_committed:
        lines.append(f"check: all {r.accepted} accepted transactions committed")
    else:
        sample = ", ".join(f"{t[:16]}… {s}" for t, s in r.missing_sample.items())
        lines.append(f"check FAILED: {r.uncommitted} accepted transactions not committed: {sample}")
    lines.extend(f"note: {e}" for e in r.errors)
    return "\n".join(lines)


def report_json(r: BenchReport) -> bytes:
    doc = msgspec.to_builtins(r)
    doc["all_committed"] = r.all_committed
    return msgspec.json.format(msgspec.json.encode(doc), indent=2) + b"\n"
