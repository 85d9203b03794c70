"""Run options that change the network a bench starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaincity.bench.driver import BenchOptions, _set_node_options, check_options
from chaincity.bench.network import BenchError, init_options
from chaincity.genesis.inspect import load_network
from chaincity.genesis.network import create_network

NOW_MS = 1_800_000_000_000


def test_node_options_reach_every_node_config(tmp_path: Path) -> None:
    view = create_network(tmp_path / "net", init_options(4, "ed25519-sha256", 32000), NOW_MS, False)
    _set_node_options(view.nodes, BenchOptions(state_cache_pages=50_000, verify_processes=2))
    again = load_network(tmp_path / "net", NOW_MS)
    assert [n.config.state_cache_pages for n in again.nodes] == [50_000] * 4
    assert [n.config.verify_processes for n in again.nodes] == [2] * 4
    # Everything else is as written: the network still loads and checks.
    assert [n.config.name for n in again.nodes] == [n.config.name for n in view.nodes]


def test_verify_processes_alone_keeps_the_default_cache(tmp_path: Path) -> None:
    view = create_network(tmp_path / "net", init_options(1, "ed25519-sha256", 32000), NOW_MS, False)
    default = view.nodes[0].config.state_cache_pages
    _set_node_options(view.nodes, BenchOptions(verify_processes=1))
    (node,) = load_network(tmp_path / "net", NOW_MS).nodes
    assert (node.config.state_cache_pages, node.config.verify_processes) == (default, 1)


@pytest.mark.parametrize("count", [-1, 65])
def test_verify_processes_out_of_range_is_refused(count: int) -> None:
    with pytest.raises(BenchError, match="verify-processes"):
        check_options(BenchOptions(verify_processes=count))


@pytest.mark.parametrize("pages", [1, 999, 100_000_001])
def test_state_cache_bound_out_of_range_is_refused(pages: int) -> None:
    with pytest.raises(BenchError, match="state-cache-pages"):
        check_options(BenchOptions(state_cache_pages=pages))


def test_block_txs_sets_the_network_block_limit(tmp_path: Path) -> None:
    default = init_options(4, "ed25519-sha256", 32000).params.block_txs_max
    view = create_network(
        tmp_path / "net", init_options(4, "ed25519-sha256", 32000, 1_000), NOW_MS, False
    )
    assert load_network(tmp_path / "net", NOW_MS).genesis.params.block_txs_max == 1_000 != default
    assert (
        view.genesis.params.tx_expiry_blocks_max
        == init_options(1, "sm2-sm3", 1).params.tx_expiry_blocks_max
    )


@pytest.mark.parametrize("count", [-1, 20_001])
def test_block_txs_out_of_range_is_refused(count: int) -> None:
    with pytest.raises(BenchError, match="block-txs"):
        check_options(BenchOptions(block_txs=count))
