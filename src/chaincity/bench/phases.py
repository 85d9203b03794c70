"""Where the nodes' CPU goes: the per-phase counters each node keeps
(``chaincity_cpu_seconds_total{chain, phase}`` on /metrics), read before and
after the load and turned into milliseconds per committed transaction."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

from chaincity.node.metrics import CPU_METRIC

METRICS_SIZE_MAX = 4 * 1024 * 1024
READ_TIMEOUT_S = 10.0
_PHASE = re.compile(r'(?:^|,)phase="([a-z_]{1,64})"')

Phases = dict[str, float]


def parse_cpu_phases(text: str) -> Phases:
    """CPU seconds by phase in a /metrics text, summed over the node's chains.
    Lines that do not parse are left out."""
    out: Phases = {}
    prefix = CPU_METRIC + "{"
    for line in text.splitlines():
        if not line.startswith(prefix):
            continue
        labels, sep, value = line[len(prefix) :].rpartition("} ")
        match = _PHASE.search(labels) if sep else None
        if match is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        if seconds >= 0:
            out[match.group(1)] = out.get(match.group(1), 0.0) + seconds
    return out


def read_cpu_phases(api_url: str, timeout_s: float = READ_TIMEOUT_S) -> Phases | None:
    """A node's counters, or None if it does not answer."""
    try:
        with urllib.request.urlopen(f"{api_url}/metrics", timeout=timeout_s) as resp:
            text = resp.read(METRICS_SIZE_MAX).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return parse_cpu_phases(text)


def compute_phase_figures(
    before: Sequence[Phases | None], after: Sequence[Phases | None], committed: int
) -> Phases:
    """Milliseconds of CPU per committed transaction by phase, the mean over the
    nodes read both times; the largest first."""
    pairs = [(b, a) for b, a in zip(before, after, strict=True) if b is not None and a is not None]
    if not pairs or committed <= 0:
        return {}
    totals: dict[str, float] = {}
    for b, a in pairs:
        for phase, seconds in a.items():
            totals[phase] = totals.get(phase, 0.0) + max(0.0, seconds - b.get(phase, 0.0))
    per_tx = {p: s * 1000 / committed / len(pairs) for p, s in totals.items()}
    return dict(sorted(per_tx.items(), key=lambda kv: (-kv[1], kv[0])))


def format_phases(phases: Mapping[str, float], node_ms_per_tx: float | None) -> str:
    """One line: each phase's ms per transaction, then the rest of the nodes' CPU."""
    parts = [f"{p} {ms:.3f}" for p, ms in phases.items()]
    if node_ms_per_tx is not None:
        rest = node_ms_per_tx - sum(phases.values())
        parts.append(f"rest {rest:.3f} (HTTP and peer I/O, event loop, worker processes)")
    return "node CPU by phase, ms per committed tx (mean of the nodes): " + ", ".join(parts)
