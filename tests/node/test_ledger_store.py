"""The LMDB chain store's batch lookup agrees with its one-by-one lookup."""

from __future__ import annotations

from pathlib import Path

from chaincity.crypto import get_suite
from chaincity.node.chain import ChainDeps, ChainRuntime
from chaincity.node.ledger_store import open_chain_store
from chaincity.node.metrics import Metrics
from tests.node.harness import SimNet, SimOutbox, make_genesis, validator_key
from tests.support import make_tx


def test_committed_among_finds_exactly_the_committed_ids(tmp_path: Path) -> None:
    genesis = make_genesis(1)
    suite = get_suite("ed25519-sha256")
    store = open_chain_store(tmp_path / "node", "main", suite, genesis)
    net = SimNet(1)
    deps = ChainDeps(
        genesis=genesis,
        suite=suite,
        private_key=validator_key(0),
        store=store,
        outbox=SimOutbox(net, 0),
        schedule=net.schedule,
        now_ms=lambda: net.now_ms,
        metrics=Metrics(),
    )
    node = ChainRuntime("main", deps)
    net.nodes.append(node)
    node.start()
    try:
        raws = [
            make_tx("kv", "put", {"key": f"k{i}", "value": i}, nonce=i, expiry=500)
            for i in range(3)
        ]
        ids = [o.tx_id for o in node.submit_now(raws)]
        assert net.run_until(lambda: all(store.is_committed(t) for t in ids))
        unknown = b"\x07" * 32
        assert store.committed_among([*ids, unknown]) == set(ids)
        assert store.committed_among([]) == set()
        # Submitting a committed transaction again is refused as committed.
        (again,) = node.submit_now(raws[:1])
        assert again.error is not None and again.error.reject.value == "committed"
    finally:
        node.stop()
        store.close()


def test_the_state_page_cache_bound_comes_from_the_node_config(tmp_path: Path) -> None:
    import pytest

    from chaincity.genesis.errors import ConfigError
    from chaincity.genesis.node_config import parse_node_config
    from chaincity.state.store import PAGE_CACHE_DEFAULT

    suite = get_suite("ed25519-sha256")
    genesis = make_genesis(1)
    store = open_chain_store(tmp_path / "a", "main", suite, genesis, state_cache_pages=5_000)
    assert store.ledger.state._cache_max == 5_000
    default = open_chain_store(tmp_path / "b", "main", suite, genesis)
    assert default.ledger.state._cache_max == PAGE_CACHE_DEFAULT
    # The bound is the Python writer's: the native routine caches no pages.
    assert store.ledger.state._caching is not store.ledger.state.native
    text = b'name = "n"\norg = "o"\nstate_cache_pages = 20000\n'
    text += b'[p2p]\nhost = "127.0.0.1"\nport = 7700\n[api]\nhost = "127.0.0.1"\nport = 8700\n'
    text += b'[tls]\ncert = "c"\nkey = "k"\nca_bundle = "b"\n'
    assert parse_node_config(text, "node.toml").state_cache_pages == 20_000
    assert (
        parse_node_config(text.replace(b"state_cache_pages = 20000\n", b""), "n").state_cache_pages
        == PAGE_CACHE_DEFAULT
    )
    with pytest.raises(ConfigError, match="state_cache_pages"):
        parse_node_config(text.replace(b"20000", b"10"), "node.toml")
