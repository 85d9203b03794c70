"""Pruning by generation: which generations are copied forward, deleted, or kept."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaincity.state import (
    AuthenticatedState,
    LmdbConfig,
    LmdbStore,
    compute_root,
    verify_state_proof,
)
from chaincity.state.generations import _NATIVE, count_generations, paths_of
from chaincity.state.store import table_names
from chaincity.state.tree import StateCorruption
from tests.state.generation_checks import check_generations, tree_pages
from tests.state.test_native import SHA

TABLES = table_names("")
WINDOW = 3


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LmdbStore]:
    kv = LmdbStore(LmdbConfig(str(tmp_path), durable=False, map_size_bytes=2**28))
    kv.open_tables(list(TABLES.values()))
    yield kv
    kv.close()


def _key(i: int) -> bytes:
    return b"k" + i.to_bytes(4, "big")


def _commit(
    state: AuthenticatedState, store: LmdbStore, changes: dict[bytes, bytes | None]
) -> list[int]:
    """Commit ``changes``; returns the generations that version copied forward."""
    version = 0 if state.latest_version is None else state.latest_version + 1
    with store.read() as txn:  # the same snapshot as prepare's: nothing is written between
        refreshed, _paths = state.generations.to_refresh(txn, version)
    state.commit(state.prepare_changes(state.latest_version, changes.items()))
    return refreshed


def _versions_stored(store: LmdbStore) -> set[int]:
    with store.read() as txn:
        return {struct.unpack_from(">Q", k)[0] for k, _v in txn.scan(TABLES["nodes"])}


@pytest.mark.parametrize("native", [True, False])
def test_a_sparse_generation_is_copied_forward_then_deleted(store: LmdbStore, native: bool) -> None:
    state = AuthenticatedState(store, SHA, window=WINDOW, copy_after_pct=150, native=native)
    model = {_key(i): b"v0" for i in range(400)}
    _commit(state, store, dict(model))
    with store.read() as txn:
        written_by_0 = state.generations.totals(txn)[0]
    refreshed_after = None
    for version in range(1, 30):
        changes: dict[bytes, bytes | None] = {_key(i): b"v%d" % version for i in range(0, 400, 3)}
        model.update(changes)  # type: ignore[arg-type]
        with store.read() as txn:
            written, live = state.generations.totals(txn)
        if 0 in _commit(state, store, changes):
            refreshed_after = (written - written_by_0, live)
        check_generations(state, store)
    assert refreshed_after is not None
    since, live = refreshed_after
    assert since >= live * 3 // 2  # not before 150 % of the tree was written after it
    assert 0 not in _versions_stored(store)
    assert state.root() == compute_root(SHA, model)


def test_a_generation_to_copy_that_lacks_a_page_is_corruption(store: LmdbStore) -> None:
    state = AuthenticatedState(store, SHA, window=WINDOW, copy_after_pct=150)
    _commit(state, store, {_key(i): b"v0" for i in range(400)})
    for version in range(1, 30):
        with store.read() as txn:
            due = 0 in state.generations.to_refresh(txn, version)[0]
        if due:
            break
        _commit(state, store, {_key(i): b"v%d" % version for i in range(0, 400, 3)})
    assert due
    with store.write() as txn:  # one page of generation 0 goes missing
        first = next(k for k, _v in txn.scan(TABLES["nodes"], struct.pack(">Q", 0)))
        txn.delete(TABLES["nodes"], first)
    # Opened afresh: a running state chose this refresh in the last commit, before the loss.
    state = AuthenticatedState(store, SHA, window=WINDOW, copy_after_pct=150)
    latest = state.latest_version
    with pytest.raises(StateCorruption, match="version 0 lacks pages"):
        state.prepare_changes(latest, [(_key(1), b"after")])
    assert state.latest_version == latest


def test_a_dense_generation_is_kept_and_never_copied(store: LmdbStore) -> None:
    state = AuthenticatedState(store, SHA, window=WINDOW, copy_after_pct=20)
    # 4,000 keys: about 280 pages, of which one key changed per version replaces three.
    _commit(state, store, {_key(i): b"v0" for i in range(4000)})
    for version in range(1, 40):
        assert 0 not in _commit(state, store, {_key(version): b"v%d" % version})
        check_generations(state, store)
    with store.read() as txn:
        live, written = state.generations.counts(txn)[0]
    assert 2 * live > written
    assert 0 in _versions_stored(store)


def test_a_lost_page_count_is_corruption_not_a_silent_prune(store: LmdbStore) -> None:
    state = AuthenticatedState(store, SHA, window=WINDOW)
    _commit(state, store, {_key(i): b"v0" for i in range(50)})
    with store.write() as txn:
        txn.delete(TABLES["gens"], struct.pack(">Q", 0))
    with pytest.raises(StateCorruption, match="page count of version 0"):
        _commit(state, store, {_key(1): b"v1"})
    assert state.latest_version == 0
    assert 0 in _versions_stored(store)


@pytest.mark.parametrize("raw", [b"", b"\x00" * 7, b"\x00" * 9])
def test_a_malformed_generations_record_is_corruption(store: LmdbStore, raw: bytes) -> None:
    with store.write() as txn:
        txn.put(TABLES["meta"], b"generations_from", raw)
    with pytest.raises(StateCorruption, match="generations_from"):
        AuthenticatedState(store, SHA)


def test_a_store_from_before_generations_is_pruned_safely(store: LmdbStore) -> None:
    """Pages written before a store counts generations go one by one when replaced;
    its later versions are pruned by generation."""
    # A first counted version so far away that nothing is counted: the behaviour of
    # the builds before generations, whose stale lists name every replaced page.
    with store.write() as txn:
        txn.put(TABLES["meta"], b"generations_from", struct.pack(">Q", 2**62))
    rng = random.Random(7)
    model = {b"cold" + i.to_bytes(2, "big"): b"c" for i in range(2000)}  # never changed again
    state = AuthenticatedState(store, SHA, window=WINDOW)
    state.commit(state.prepare_changes(None, model.items()))
    for _ in range(7):
        _random_commit(state, model, rng)
    with store.write() as txn:  # those builds never wrote the record
        txn.delete(TABLES["meta"], b"generations_from")
    state = AuthenticatedState(store, SHA, window=WINDOW, copy_after_pct=20)
    assert state.generations.first == 8
    for _ in range(40):
        _random_commit(state, model, rng)
        check_generations(state, store)
    assert state.root() == compute_root(SHA, model)
    oldest = state.oldest_version
    key = next(iter(model))
    value, proof = state.prove(key, oldest)
    assert verify_state_proof(SHA, state.root(oldest), key, value, proof)
    with store.read() as txn:  # some pages from before are still in use, and counted never
        before = [k for k in tree_pages(state, txn, 47) if struct.unpack_from(">Q", k)[0] < 8]
        assert before
        assert min(state.generations.counts(txn)) >= 8
    assert AuthenticatedState(store, SHA).generations.first == 8  # recorded by a commit


def _random_commit(
    state: AuthenticatedState, model: dict[bytes, bytes], rng: random.Random
) -> None:
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


@pytest.mark.parametrize("table", ["due", "dying", "gens"])
def test_a_malformed_generation_entry_is_corruption(store: LmdbStore, table: str) -> None:
    state = AuthenticatedState(store, SHA, window=1, copy_after_pct=1)
    _commit(state, store, {_key(i): b"v0" for i in range(50)})
    with store.write() as txn:
        txn.put(TABLES[table], b"\x00\x00\x00", b"")
    with pytest.raises(StateCorruption, match="malformed"):
        if table == "gens":
            with store.read() as txn:
                state.generations.counts(txn)
        else:
            _commit(state, store, {_key(1): b"v1"})
            _commit(state, store, {_key(2): b"v2"})


def test_a_due_generation_counted_with_no_pages_is_corruption(store: LmdbStore) -> None:
    state = AuthenticatedState(store, SHA, window=WINDOW, copy_after_pct=1)  # due at once
    _commit(state, store, {_key(i): b"v0" for i in range(50)})
    with store.write() as txn:  # a damaged count: written 0, and marked due
        txn.put(TABLES["gens"], struct.pack(">Q", 0), struct.pack(">QQQ", 0, 0, 0))
        txn.put(TABLES["due"], struct.pack(">Q", 0), b"")
    with store.read() as txn, pytest.raises(StateCorruption, match="version 0 lacks pages"):
        state.generations.to_refresh(txn, 1)


@pytest.mark.skipif(_NATIVE is None, reason="the C routine is not built")
def test_the_c_steps_of_counting_and_listing_match_the_python_ones() -> None:
    assert _NATIVE is not None
    native_count, native_paths = _NATIVE
    rng = random.Random(4)
    for _ in range(50):
        generations = [struct.pack(">Q", rng.randrange(2**64)) for _ in range(rng.randrange(1, 6))]
        keys = [
            rng.choice(generations) + bytes(rng.randrange(16) for _ in range(rng.randrange(5)))
            for _ in range(rng.choice([0, 1, 30, 500]))
        ]
        # Replaced pages come in runs of a generation, and a generation in several runs.
        keys.sort(key=lambda key: key[8:])
        assert native_count(keys) == count_generations(keys)
        lists = [sorted(rng.sample(keys, len(keys) // 2)) for _ in range(rng.randrange(3))]
        assert native_paths(lists) == paths_of(lists)
    with pytest.raises(TypeError):
        native_count([b"short"])
    with pytest.raises(TypeError):
        native_paths([[b"short"]])
