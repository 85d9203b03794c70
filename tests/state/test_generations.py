"""Pruning by generation: the lag a store keeps, and a store that predates it."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaincity.crypto import get_suite
from chaincity.state import (
    AuthenticatedState,
    LmdbConfig,
    LmdbStore,
    compute_root,
    verify_state_proof,
)
from chaincity.state.kv import ReadTxn
from chaincity.state.store import PRUNE_LAG_DEFAULT, table_names
from chaincity.state.tree import Child, StateCorruption

SHA = get_suite("ed25519-sha256")
TABLES = table_names("")
WINDOW = 3


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LmdbStore]:
    kv = LmdbStore(LmdbConfig(str(tmp_path), durable=False, map_size_bytes=2**28))
    kv.open_tables(list(TABLES.values()))
    yield kv
    kv.close()


def _commit(state: AuthenticatedState, model: dict[bytes, bytes], rng: random.Random) -> None:
    changes: dict[bytes, bytes | None] = {}
    for _ in range(rng.randint(0, 40)):
        key = rng.randrange(300).to_bytes(2, "big")
        changes[key] = None if rng.random() < 0.2 else rng.randbytes(4)
    state.commit(state.prepare_changes(state.latest_version, changes.items()))
    for key, value in changes.items():
        if value is None:
            model.pop(key, None)
        else:
            model[key] = value


def _reached(state: AuthenticatedState, txn: ReadTxn, version: int) -> set[bytes]:
    """The node keys of ``version``'s tree (a missing page raises)."""
    found: set[bytes] = set()
    todo = [(state.root_ref(txn, version)[1], b"")]
    while todo:
        page_version, path = todo.pop()
        found.add(struct.pack(">Q", page_version) + path)
        for index, slot in enumerate(state.load_page(txn, page_version, path).slots):
            if type(slot) is Child:
                todo.append((slot.version, path + bytes((index,))))
    return found


def test_a_store_keeps_the_lag_it_started_with(store: LmdbStore) -> None:
    state = AuthenticatedState(store, SHA, prune_lag=5)
    state.commit(state.prepare_changes(None, [(b"k", b"v")]))
    assert AuthenticatedState(store, SHA).prune_lag == 5
    assert AuthenticatedState(store, SHA, prune_lag=5).prune_lag == 5
    with pytest.raises(ValueError, match="prune_lag 5"):
        AuthenticatedState(store, SHA, prune_lag=6)
    with pytest.raises(ValueError, match="at least 1"):
        AuthenticatedState(store, SHA, prune_lag=0)


def test_a_new_store_takes_the_default_lag(store: LmdbStore) -> None:
    assert AuthenticatedState(store, SHA).prune_lag == PRUNE_LAG_DEFAULT


@pytest.mark.parametrize("raw", [b"", b"\x00" * 15, struct.pack(">QQ", 0, 0)])
def test_a_malformed_generations_record_is_corruption(store: LmdbStore, raw: bytes) -> None:
    with store.write() as txn:
        txn.put(TABLES["meta"], b"generations", raw)
    with pytest.raises(StateCorruption, match="generations"):
        AuthenticatedState(store, SHA)


def test_a_store_from_before_generations_is_pruned_safely(store: LmdbStore) -> None:
    """Pages written before a store adopts generations go one by one when replaced;
    its later versions are pruned by generation."""
    # A start so far away that nothing is pruned by generation: the behaviour of
    # the builds before it, whose stale lists name every replaced page.
    with store.write() as txn:
        txn.put(TABLES["meta"], b"generations", struct.pack(">QQ", 2**62, 2))
    rng, model = random.Random(7), {}
    state = AuthenticatedState(store, SHA, window=WINDOW)
    for _ in range(8):
        _commit(state, model, rng)
    with store.write() as txn:  # those builds never wrote the record
        txn.delete(TABLES["meta"], b"generations")
    state = AuthenticatedState(store, SHA, window=WINDOW, prune_lag=2)
    first = 8
    assert state.refresh_version(first + 1) is None
    assert state.refresh_version(first + 2) == first
    for _ in range(40):
        _commit(state, model, rng)
        latest, oldest = state.latest_version, state.oldest_version
        assert latest is not None and oldest is not None
        with store.read() as txn:
            reached = set().union(*(_reached(state, txn, v) for v in range(oldest, latest + 1)))
            stored = [key for key, _raw in txn.scan(TABLES["nodes"])]
        old_pages = {key for key in stored if struct.unpack_from(">Q", key)[0] < first}
        assert old_pages == {key for key in reached if struct.unpack_from(">Q", key)[0] < first}
        newest_gone = oldest - 2  # versions up to oldest - lag are deleted whole
        assert all(not first <= struct.unpack_from(">Q", k)[0] <= newest_gone for k in stored)
    assert state.root() == compute_root(SHA, model)
    key = next(iter(model))
    value, proof = state.prove(key, state.oldest_version)
    assert verify_state_proof(SHA, state.root(state.oldest_version), key, value, proof)
    assert AuthenticatedState(store, SHA).prune_lag == 2  # recorded by the first commit
