from __future__ import annotations

from chaincity.node.metrics import Metrics


def test_render_counters_gauges_histograms() -> None:
    m = Metrics()
    m.inc("chaincity_commits_total", help_text="Blocks committed.", chain="main")
    m.inc("chaincity_commits_total", 2, chain="main")
    m.gauge("chaincity_height", lambda: 42, chain="main")
    hist = m.histogram("chaincity_tx_latency_seconds", chain="main")
    for v in (0.005, 0.2, 0.2, 50.0):
        hist.observe(v)
    text = m.render()
    assert "# HELP chaincity_commits_total Blocks committed." in text
    assert 'chaincity_commits_total{chain="main"} 3' in text
    assert 'chaincity_height{chain="main"} 42' in text
    assert 'chaincity_tx_latency_seconds_bucket{chain="main",le="0.01"} 1' in text
    assert 'chaincity_tx_latency_seconds_bucket{chain="main",le="0.25"} 3' in text
    assert 'chaincity_tx_latency_seconds_bucket{chain="main",le="+Inf"} 4' in text
    assert 'chaincity_tx_latency_seconds_count{chain="main"} 4' in text
    assert m.counter_value("chaincity_commits_total", chain="main") == 3


def test_label_values_are_escaped() -> None:
    m = Metrics()
    m.inc("x_total", peer='a"b\\c')
    assert 'x_total{peer="a\\"b\\\\c"} 1' in m.render()
