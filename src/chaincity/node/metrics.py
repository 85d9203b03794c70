"""A small metrics registry rendered in the Prometheus text format.

Metrics are labelled by chain; histograms use fixed buckets so that memory
stays constant however long the node runs.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CPU_METRIC = "chaincity_cpu_seconds_total"
CPU_HELP = "CPU seconds of the event loop's thread, by phase of a chain's work."


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Histogram:
    __slots__ = ("buckets", "count", "counts", "total")

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.count += 1
        self.total += value


class Metrics:
    """Counters, gauges (read at render time) and histograms, by name and labels."""

    def __init__(self) -> None:
        self._help: dict[str, tuple[str, str]] = {}
        self._counters: dict[tuple[str, str], float] = {}
        self._gauges: dict[tuple[str, str], Callable[[], float]] = {}
        self._histograms: dict[tuple[str, str], Histogram] = {}

    def _declare(self, name: str, kind: str, help_text: str) -> None:
        self._help.setdefault(name, (kind, help_text))

    def inc(self, name: str, amount: float = 1, help_text: str = "", **labels: str) -> None:
        self._declare(name, "counter", help_text)
        key = (name, _labels(labels))
        self._counters[key] = self._counters.get(key, 0) + amount

    def gauge(
        self, name: str, read: Callable[[], float], help_text: str = "", **labels: str
    ) -> None:
        self._declare(name, "gauge", help_text)
        self._gauges[(name, _labels(labels))] = read

    def histogram(self, name: str, help_text: str = "", **labels: str) -> Histogram:
        self._declare(name, "histogram", help_text)
        key = (name, _labels(labels))
        hist = self._histograms.get(key)
        if hist is None:
            hist = self._histograms[key] = Histogram()
        return hist

    def counter_value(self, name: str, **labels: str) -> float:
        return self._counters.get((name, _labels(labels)), 0)

    def render(self) -> str:
        lines: list[str] = []
        for name, (kind, help_text) in sorted(self._help.items()):
            if help_text:
                lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for (n, labels), value in sorted(self._counters.items()):
                if n == name:
                    lines.append(f"{name}{labels} {value:g}")
            for (n, labels), read in sorted(self._gauges.items(), key=lambda kv: kv[0]):
                if n == name:
                    lines.append(f"{name}{labels} {read():g}")
            for (n, labels), hist in sorted(self._histograms.items(), key=lambda kv: kv[0]):
                if n == name:
                    lines.extend(_render_histogram(name, labels, hist))
        return "\n".join(lines) + "\n"


def _render_histogram(name: str, labels: str, hist: Histogram) -> list[str]:
    inner = labels[1:-1] + "," if labels else ""
    lines = []
    cumulative = 0
    for bound, count in zip(hist.buckets, hist.counts, strict=False):
        cumulative += count
        lines.append(f'{name}_bucket{{{inner}le="{bound:g}"}} {cumulative}')
    lines.append(f'{name}_bucket{{{inner}le="+Inf"}} {hist.count}')
    lines.append(f"{name}_sum{labels} {hist.total:g}")
    lines.append(f"{name}_count{labels} {hist.count}")
    return lines


class CpuPhases:
    """Where a chain's CPU goes: the thread CPU seconds of each phase of its work
    (admission, execution, the ledger's write, ...) as the counter
    ``chaincity_cpu_seconds_total{chain, phase}``. Phases are measured apart, never
    nested, and around batches and blocks, not single transactions, so measuring
    costs next to nothing. ``clock`` gives the thread's CPU seconds."""

    __slots__ = ("_chain", "_clock", "_metrics")

    def __init__(self, metrics: Metrics, chain_id: str, clock: Callable[[], float]) -> None:
        self._metrics = metrics
        self._chain = chain_id
        self._clock = clock

    @contextmanager
    def measure(self, phase: str) -> Iterator[None]:
        started = self._clock()
        try:
            yield
        finally:
            seconds = self._clock() - started
            self._metrics.inc(CPU_METRIC, seconds, CPU_HELP, chain=self._chain, phase=phase)
