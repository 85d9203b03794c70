"""Run options that change the network a bench starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaincity.bench.driver import BenchOptions, _set_state_cache, check_options
from chaincity.bench.network import BenchError, init_options
from chaincity.genesis.inspect import load_network
from chaincity.genesis.network import create_network

NOW_MS = 1_800_000_000_000


def test_state_cache_bound_reaches_every_node_config(tmp_path: Path) -> None:
    view = create_network(tmp_path / "net", init_options(4, "ed25519-sha256", 32000), NOW_MS, False)
    _set_state_cache(view.nodes, 50_000)
    again = load_network(tmp_path / "net", NOW_MS)
    assert [n.config.state_cache_pages for n in again.nodes] == [50_000] * 4
    # Everything else is as written: the network still loads and checks.
    assert [n.config.name for n in again.nodes] == [n.config.name for n in view.nodes]


@pytest.mark.parametrize("pages", [1, 999, 100_000_001])
def test_state_cache_bound_out_of_range_is_refused(pages: int) -> None:
    with pytest.raises(BenchError, match="state-cache-pages"):
        check_options(BenchOptions(state_cache_pages=pages))
