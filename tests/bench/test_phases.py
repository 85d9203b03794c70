from __future__ import annotations

import pytest

from chaincity.bench.phases import (
    compute_phase_figures,
    format_phases,
    parse_cpu_phases,
    read_cpu_phases,
)
from chaincity.node.metrics import CpuPhases, Metrics


def test_parse_reads_what_a_node_renders_summed_over_chains() -> None:
    metrics = Metrics()
    readings = iter([0.0, 1.5, 10.0, 10.25, 20.0, 22.0])
    for chain, phase in (("main", "execute"), ("energy", "execute"), ("main", "admission")):
        with CpuPhases(metrics, chain, lambda: next(readings)).measure(phase):
            pass
    metrics.inc("chaincity_blocks_committed_total", 7, chain="main")
    assert parse_cpu_phases(metrics.render()) == {"execute": 1.75, "admission": 2.0}


@pytest.mark.parametrize(
    "line",
    [
        'chaincity_cpu_seconds_total{chain="main",phase="execute"} lots',
        'chaincity_cpu_seconds_total{chain="main",phase="execute"} -3',
        'chaincity_cpu_seconds_total{chain="main",phase="Exec ute"} 3',
        'chaincity_cpu_seconds_total{chain="main"} 3',
        'chaincity_cpu_seconds_total{chain="main",phase="execute"}',
        'chaincity_cpu_seconds_total_other{phase="execute"} 3',
        "",
        "\x00" * 100,
    ],
)
def test_lines_that_do_not_parse_are_left_out(line: str) -> None:
    good = 'chaincity_cpu_seconds_total{chain="main",phase="admission"} 2'
    assert parse_cpu_phases(line + "\n" + good) == {"admission": 2.0}


def test_figures_are_per_committed_transaction_and_the_mean_of_nodes_read_twice() -> None:
    before = [{"execute": 1.0}, {"execute": 2.0, "admission": 1.0}, None]
    after = [{"execute": 3.0, "admission": 1.0}, {"execute": 4.0, "admission": 3.0}, {"x": 9.0}]
    # 2 nodes read both times, 1,000 transactions: execute (2 s + 2 s) / 2 / 1000 = 2 ms.
    figures = compute_phase_figures(before, after, 1_000)
    assert figures == {"execute": 2.0, "admission": 1.5}
    assert list(figures) == ["execute", "admission"]  # the largest first
    assert compute_phase_figures(before, after, 0) == {}
    assert compute_phase_figures([None], [{"execute": 1.0}], 10) == {}


def test_format_names_the_rest_of_the_nodes_cpu() -> None:
    line = format_phases({"signatures": 0.1, "execute": 0.05}, 0.2)
    assert "signatures 0.100, execute 0.050, rest 0.050" in line
    assert "rest" not in format_phases({"execute": 0.05}, None)


def test_a_node_that_does_not_answer_reads_as_none() -> None:
    assert read_cpu_phases("http://127.0.0.1:9", timeout_s=1.0) is None
