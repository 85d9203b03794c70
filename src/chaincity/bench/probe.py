"""How long a node takes to answer a plain query while it is under load.

The bench asks one node for ``GET /v1/status`` every ``PROBE_PERIOD_S`` during the
load and the drain, one request at a time, and reports the answer times: what a
client reading the chain would see while the network works through its backlog.
"""

from __future__ import annotations

import time

import msgspec

from chaincity.bench.stats import percentile
from chaincity.node.local import read_status

PROBE_PERIOD_S = 0.1
PROBE_TIMEOUT_S = 10.0
PROBE_SAMPLES_MAX = 100_000


class ApiProbe(msgspec.Struct, frozen=True):
    node: str
    period_s: float
    answered_ms: list[float]  # answer times, in the order asked
    failed: int  # no status document within PROBE_TIMEOUT_S


def ask_status(api_url: str, timeout_s: float = PROBE_TIMEOUT_S) -> float | None:
    """Milliseconds ``GET /v1/status`` took to answer, or None if it failed."""
    started = time.monotonic()
    if read_status(api_url, timeout_s) is None:
        return None
    return (time.monotonic() - started) * 1000


class Prober:
    """Asks one node, whenever told to, and keeps what it answered."""

    def __init__(self, node: str, api_url: str) -> None:
        self._node = node
        self._api_url = api_url
        self._answered_ms: list[float] = []
        self._failed = 0

    def ask(self) -> None:
        took_ms = ask_status(self._api_url)
        if took_ms is None:
            self._failed += 1
        elif len(self._answered_ms) < PROBE_SAMPLES_MAX:
            self._answered_ms.append(took_ms)

    def result(self) -> ApiProbe:
        return ApiProbe(self._node, PROBE_PERIOD_S, list(self._answered_ms), self._failed)


def format_probe(probe: ApiProbe) -> str:
    every = f"every {probe.period_s * 1000:.0f} ms"
    head = f"API while loaded (GET /v1/status on {probe.node}, {every}):"
    if not probe.answered_ms:
        return f"{head} no answer ({probe.failed} failed)"
    ms = sorted(probe.answered_ms)
    return (
        f"{head} {len(ms)} answered, p50 {percentile(ms, 50):.1f} ms, "
        f"p99 {percentile(ms, 99):.0f} ms, max {ms[-1]:.0f} ms; {probe.failed} failed"
    )
