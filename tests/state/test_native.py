"""The C tree routine against the Python writer: same roots, pages, stale lists and errors.

The pairs run with a lag of 2 versions, so that most updates also refresh (copy
forward) the pages of an older version and commits delete whole versions.
"""

from __future__ import annotations

import shutil
import struct
import sys
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaincity.crypto import get_suite
from chaincity.crypto.suite import CryptoSuite
from chaincity.state import (
    AuthenticatedState,
    LmdbConfig,
    LmdbStore,
    compute_root,
    verify_state_proof,
)
from chaincity.state.page import Page
from chaincity.state.store import StateUpdate
from chaincity.state.tree import Child, Hasher, Leaf, StateCorruption
from chaincity.state.writer import NATIVE_APPLY

if NATIVE_APPLY is None:  # pragma: no cover - a build without the routine
    if any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        # A compiler is there, so the install should have built it: that is a failure.
        pytest.fail("chaincity.state._treecore is not built (pip install -e . builds it)")
    # An install without a compiler runs the Python writer, which the other state
    # tests cover; there is no native routine here to compare it with.
    pytest.skip(
        "no C compiler on this machine: the native routine is not built",
        allow_module_level=True,
    )

from chaincity.state import _treecore

SUITES = [get_suite("ed25519-sha256"), get_suite("sm2-sm3")]
SHA = SUITES[0]
H = Hasher(SHA)
KEYS = st.binary(min_size=1, max_size=2)
VALUES = st.binary(max_size=3)
BATCH = st.dictionaries(KEYS, st.none() | VALUES, max_size=300)


class Pair:
    """The same history applied to two states, one per tree writer."""

    def __init__(self, suite: CryptoSuite, cache_pages: int) -> None:
        self.dirs = [tempfile.mkdtemp(prefix="chaincity-native-") for _ in range(2)]
        self.stores = [LmdbStore(LmdbConfig(d, durable=False)) for d in self.dirs]
        self.states = [
            AuthenticatedState(
                store, suite, window=3, page_cache_max=cache_pages, native=native, copy_after_pct=20
            )
            for store, native in zip(self.stores, (True, False), strict=True)
        ]

    def close(self) -> None:
        for store, path in zip(self.stores, self.dirs, strict=True):
            store.close()
            shutil.rmtree(path, ignore_errors=True)

    def prepare(self, changes: dict[bytes, bytes | None]) -> list[StateUpdate | Exception]:
        results: list[StateUpdate | Exception] = []
        for state in self.states:
            try:
                results.append(state.prepare_changes(state.latest_version, changes.items()))
            except Exception as exc:  # compared between the two writers below
                results.append(exc)
        return results


@contextmanager
def pair(suite: CryptoSuite = SHA, cache_pages: int = 1000) -> Iterator[Pair]:
    both = Pair(suite, cache_pages)
    try:
        yield both
    finally:
        both.close()


def _same_update(native: StateUpdate, python: StateUpdate) -> None:
    assert native.root == python.root
    assert native.root_page_version == python.root_page_version
    assert native.pages == python.pages
    assert native.stale.nodes == python.stale.nodes
    assert native.values == python.values


def _same_error(native: Exception, python: Exception) -> None:
    assert type(native) is type(python)
    assert str(native) == str(python)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    suite=st.sampled_from(SUITES),
    cache_pages=st.sampled_from([1, 8, 1000]),
    batches=st.lists(BATCH, min_size=1, max_size=9),
)
def test_both_writers_give_the_same_versions(
    suite: CryptoSuite, cache_pages: int, batches: list[dict[bytes, bytes | None]]
) -> None:
    model: dict[bytes, bytes] = {}
    with pair(suite, cache_pages) as both:
        for changes in batches:
            native, python = both.prepare(changes)
            assert isinstance(native, StateUpdate) and isinstance(python, StateUpdate)
            _same_update(native, python)
            for key, value in changes.items():
                if value is None:
                    model.pop(key, None)
                else:
                    model[key] = value
            assert native.root == compute_root(suite, model)
            for state, update in zip(both.states, (native, python), strict=True):
                state.commit(update)
                assert state.root() == native.root


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), deletes=st.integers(0, 400))
def test_deep_trees_shrinking_to_nothing_match(seed: int, deletes: int) -> None:
    """Many keys (several pages deep), then deletions that collapse pages into leaves."""
    keys = [(seed * 7919 + i).to_bytes(4, "big") for i in range(400)]
    with pair(cache_pages=50) as both:
        for changes in (
            dict.fromkeys(keys, b"v"),
            dict.fromkeys(keys[:deletes]),
            dict.fromkeys(keys),
        ):
            native, python = both.prepare(changes)
            assert isinstance(native, StateUpdate) and isinstance(python, StateUpdate)
            _same_update(native, python)
            for state, update in zip(both.states, (native, python), strict=True):
                state.commit(update)
        assert native.root == H.zero


# -- corrupt stored pages: both writers refuse them alike ---------------------


def _plant_tree(both: Pair) -> tuple[bytes, bytes]:
    """Commit a tree of a few pages; return a child page's node key and bytes."""
    first = both.prepare({bytes([i, j]): b"x" for i in range(40) for j in range(3)})
    for state, update in zip(both.states, first, strict=True):
        assert isinstance(update, StateUpdate)
        state.commit(update)
    native = first[0]
    assert isinstance(native, StateUpdate)
    # A page one level down that holds a child page as well as leaves.
    return next((k, r) for k, r in native.pages if len(k) == 9 and r[:2] != r[2:4])


def _overwrite(both: Pair, node_key: bytes, raw: bytes) -> None:
    for index, store in enumerate(both.stores):
        with store.write() as txn:
            txn.put(both.states[index].tables["nodes"], node_key, raw)
        # A fresh state: nothing of the planted tree is cached.
        old = both.states[index]
        both.states[index] = AuthenticatedState(store, old.suite, window=3, native=old.native)


def _corruptions(raw: bytes) -> list[bytes]:
    occupied, leaves = struct.unpack_from(">HH", raw)
    free = next(i for i in range(16) if not occupied >> i & 1)
    return [
        raw[:-1],  # truncated
        raw + b"\x00",  # extra byte
        raw[:3],  # shorter than the masks
        struct.pack(">HH", occupied, leaves | 1 << free) + raw[4:],  # leaf mask outside occupied
        raw[:-32],  # a MANY position's hash missing
        struct.pack(">HH", occupied, occupied) + raw[4:],  # children read as leaves
        b"",
    ]


@pytest.mark.parametrize("case", range(7))
def test_corrupt_pages_raise_the_same_error_on_both_paths(case: int) -> None:
    with pair() as both:
        node_key, raw = _plant_tree(both)
        _overwrite(both, node_key, _corruptions(raw)[case])
        # Rewrite every key, so the update descends through the damaged page.
        native, python = both.prepare({bytes([i, j]): b"y" for i in range(40) for j in range(3)})
        assert isinstance(native, StateCorruption) and isinstance(python, Exception)
        _same_error(native, python)


def test_a_missing_page_raises_the_same_error_on_both_paths() -> None:
    with pair() as both:
        node_key, _raw = _plant_tree(both)
        for index, store in enumerate(both.stores):
            with store.write() as txn:
                txn.delete(both.states[index].tables["nodes"], node_key)
            old = both.states[index]
            both.states[index] = AuthenticatedState(store, old.suite, native=old.native)
        native, python = both.prepare({bytes([i, 0]): b"y" for i in range(40)})
        assert isinstance(native, StateCorruption) and "missing" in str(native)
        assert isinstance(python, Exception)
        _same_error(native, python)


def _chain_page(index: int) -> bytes:
    """A page holding nothing but one child page at ``index``."""
    page = Page.empty()
    page.set_slot(index, Child(0, b"\x11" * 32))
    page.rehash(H, 1 << index)
    return page.encode()


def test_a_chain_as_deep_as_the_key_hash_raises_the_same_error_on_both_paths() -> None:
    """Pages along a key's whole hash: only corrupt storage can hold two such keys."""
    key = b"deep"
    key_hash = H.key(key)
    nibbles = [(key_hash[d >> 1] >> (0 if d & 1 else 4)) & 15 for d in range(64)]
    with pair() as both:
        _plant_tree(both)
        for index, store in enumerate(both.stores):
            state = both.states[index]
            root_version = state.latest_version
            assert root_version is not None
            with store.write() as txn:
                for depth in range(65):  # the last one, past the hash, is never reached
                    node_key = struct.pack(">Q", 0) + bytes(nibbles[:depth])
                    txn.put(state.tables["nodes"], node_key, _chain_page(nibbles[depth % 64]))
                root = Page.decode(_chain_page(nibbles[0]), 32).top(H)
                ref = root + struct.pack(">Q", 0)
                txn.put(state.tables["roots"], struct.pack(">Q", root_version), ref)
            both.states[index] = AuthenticatedState(store, state.suite, native=state.native)
        native, python = both.prepare({key: b"v"})
        assert isinstance(native, StateCorruption) and "whole key hash" in str(native)
        assert isinstance(python, Exception)
        _same_error(native, python)


# -- the C routine called directly --------------------------------------------


def _apply(
    changes: list[tuple[bytes, bytes | None]],
    fetch: Callable[[bytes], bytes],
    hash_fn: Callable[[bytes], bytes] = SHA.hash,
    root_version: int | None = 0,
) -> tuple[bytes, list[tuple[bytes, bytes]], list[bytes]]:
    return _treecore.apply(
        changes, root_version, 1, fetch, hash_fn, H.leaf_prefix, H.node_prefix, 32
    )


def _root_page() -> bytes:
    page = Page.empty()
    for index in (2, 5, 9):
        page.set_slot(index, Leaf.of(bytes([index * 16]) + bytes(31), b"\x01" * 32))
    page.set_slot(12, Child(0, b"\x22" * 32))
    page.rehash(H, 0xFFFF)
    return page.encode()


CHANGE: list[tuple[bytes, bytes | None]] = [(b"\x50" + bytes(31), b"\x03" * 32)]


def test_a_valid_page_is_updated_like_the_python_writer() -> None:
    root, pages, stale = _apply(CHANGE, lambda key: _root_page())
    page = Page.decode(_root_page(), 32).copy()
    page.set_slot(5, Leaf.of(b"\x50" + bytes(31), b"\x03" * 32))
    page.rehash(H, 1 << 5)
    assert stale == [bytes(8)]
    assert pages == [(struct.pack(">Q", 1), page.encode())]
    assert root == page.top(H)


@pytest.mark.parametrize("case", range(7))
def test_the_c_parser_refuses_corrupt_pages(case: int) -> None:
    bad = _corruptions(_root_page())[case]
    with pytest.raises(StateCorruption):
        _apply(CHANGE, lambda key: bad)


def test_exceptions_from_fetch_and_hash_fn_propagate() -> None:
    def failing_fetch(key: bytes) -> bytes:
        raise KeyError("no such page")

    def failing_hash(data: bytes) -> bytes:
        raise RuntimeError("hash broke")

    with pytest.raises(KeyError, match="no such page"):
        _apply(CHANGE, failing_fetch)
    with pytest.raises(RuntimeError, match="hash broke"):
        _apply(CHANGE, lambda key: _root_page(), failing_hash)
    with pytest.raises(ValueError, match="wrong size"):
        _apply(CHANGE, lambda key: _root_page(), lambda data: b"short")
    with pytest.raises(TypeError, match="bytes"):
        _apply(CHANGE, lambda key: "not bytes")  # type: ignore[arg-type,return-value]


def test_malformed_changes_are_refused() -> None:
    def fetch(key: bytes) -> bytes:
        return _root_page()

    key_a, key_b = b"\x01" * 32, b"\x02" * 32
    with pytest.raises(ValueError, match="sorted"):
        _apply([(key_b, None), (key_a, None)], fetch)
    with pytest.raises(ValueError, match="sorted"):
        _apply([(key_a, None), (key_a, None)], fetch)
    for bad in ([(key_a[:31], None)], [(key_a, b"x")], [(key_a,)], [key_a], [(key_a, 3)]):
        with pytest.raises(TypeError):
            _apply(bad, fetch)  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        _apply(CHANGE, fetch, root_version=-1)
    with pytest.raises(ValueError, match="hash_size"):
        _treecore.apply(CHANGE, None, 1, fetch, SHA.hash, b"", b"", 65)


def _refresh(
    refreshes: list[bytes], refresh_versions: tuple[int, ...] = (0,)
) -> list[tuple[bytes, bytes]]:
    """Refresh versions (0) of a tree whose root page (version 0) has a child at slot 12."""
    fetch = {bytes(8): _root_page(), bytes(8) + b"\x0c": _child_page()}.__getitem__
    return _treecore.apply(  # type: ignore[no-any-return]
        [],
        0,
        1,
        fetch,
        SHA.hash,
        H.leaf_prefix,
        H.node_prefix,
        32,
        None,
        refresh_versions,
        refreshes,
    )[1]


def _child_page() -> bytes:
    """Five keys: more than a bucket holds, so the page never collapses into one."""
    page = Page.empty()
    for index in (1, 3, 7, 9, 11):
        page.set_slot(index, Leaf.of(bytes([0xC0 + index]) + bytes(31), b"\x04" * 32))
    page.rehash(H, 0xFFFF)
    return page.encode()


def test_malformed_refreshes_are_refused() -> None:
    for bad in ([b"\x10"], [b"\x0c" * 64], ["x"], [3]):
        with pytest.raises(TypeError, match="nibbles"):
            _refresh(bad)  # type: ignore[arg-type]
    for unsorted in ([b"\x0c", b""], [b"\x0c", b"\x0c"], [b"\x0c\x01", b"\x0c"]):
        with pytest.raises(ValueError, match="sorted"):
            _refresh(unsorted)
    with pytest.raises(ValueError, match="without refresh_versions"):
        _refresh([b""], ())
    with pytest.raises(OverflowError):
        _refresh([b""], (-1,))
    with pytest.raises(ValueError, match="too many"):
        _refresh([b""], tuple(range(17)))
    with pytest.raises(TypeError):
        _refresh([b""], 0)  # type: ignore[arg-type]


def test_a_refresh_copies_what_the_tree_reaches_and_nothing_else() -> None:
    # The root (version 0) is reached, so it is copied; its child at slot 12 names
    # version 0, so it is copied too, and the copied root names the copy.
    pages = _refresh([b"", b"\x0c", b"\x0d"])
    assert [key for key, _raw in pages] == [struct.pack(">Q", 1) + b"\x0c", struct.pack(">Q", 1)]
    assert pages[0][1] == _child_page()
    root = Page.decode(pages[1][1], 32)
    child = root.slots[12]
    assert isinstance(child, Child) and child.version == 1
    # A refresh of another version reaches nothing here: no page is written.
    assert _refresh([b"\x0c"], (7,)) == []
    # Among several refreshed versions, version 0 is one: the same copies.
    assert _refresh([b"", b"\x0c", b"\x0d"], (9, 0, 4)) == pages


def test_error_paths_leak_neither_references_nor_memory() -> None:
    bad, good = _root_page()[:-1], _root_page()
    calls = 1000
    outcomes = {"corrupt": 0, "hash": 0, "ok": 0, "refresh": 0}

    def run_all() -> None:
        for _ in range(calls):
            try:
                _apply(CHANGE, lambda key: bad)
            except StateCorruption:
                outcomes["corrupt"] += 1
            try:
                _apply(CHANGE, lambda key: good, lambda data: b"short")
            except ValueError:
                outcomes["hash"] += 1
            _apply(CHANGE, lambda key: good)
            _refresh([b"", b"\x0c"])
            outcomes["ok"] += 1
            try:
                _refresh([b"\x0c", b""])
            except ValueError:
                outcomes["refresh"] += 1

    run_all()  # warm up the interpreter's free lists
    refs_bad, refs_good = sys.getrefcount(bad), sys.getrefcount(good)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run_all()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert outcomes == {
        "corrupt": 2 * calls,
        "hash": 2 * calls,
        "ok": 2 * calls,
        "refresh": 2 * calls,
    }
    assert sys.getrefcount(bad) == refs_bad
    assert sys.getrefcount(good) == refs_good
    # One object of 32 bytes or more kept per call of any kind would pass this bound.
    assert grown < 32 * calls


def test_without_the_routine_the_python_writer_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import chaincity.state.store as store_module

    monkeypatch.setattr(store_module, "NATIVE_APPLY", None)
    store = LmdbStore(LmdbConfig(str(tmp_path), durable=False))
    try:
        with pytest.raises(ValueError, match="not built"):
            AuthenticatedState(store, SHA, native=True)
        state = AuthenticatedState(store, SHA)
        assert not state.native
        update = state.prepare_changes(None, [(b"k", b"v"), (b"l", b"w")])
        assert update.decoded_pages  # only the Python writer leaves decoded pages
        assert update.root == compute_root(SHA, {b"k": b"v", b"l": b"w"})
    finally:
        store.close()


def test_the_cache_is_read_before_fetch() -> None:
    calls: list[bytes] = []

    def fetch(key: bytes) -> bytes:
        calls.append(key)
        return _root_page()

    def run(cache: object) -> tuple[bytes, list[tuple[bytes, bytes]], list[bytes]]:
        return _treecore.apply(  # type: ignore[no-any-return]
            CHANGE, 0, 1, fetch, SHA.hash, H.leaf_prefix, H.node_prefix, 32, None, (), (), cache
        )

    expected = run(None)
    assert calls == [bytes(8)]
    assert run({bytes(8): _root_page()}) == expected
    assert calls == [bytes(8)]  # served by the cache
    assert run({bytes(8): Page.decode(_root_page(), 32)}) == expected  # not bytes: fetched
    assert calls == [bytes(8)] * 2
    with pytest.raises(TypeError, match="dict"):
        run([])


@pytest.mark.parametrize("native", [True, False])
def test_only_the_python_writer_keeps_pages_on_the_heap(tmp_path: Path, native: bool) -> None:
    store = LmdbStore(LmdbConfig(str(tmp_path), durable=False, map_size_bytes=2**26))
    try:
        state = AuthenticatedState(store, SHA, window=3, native=native)
        for version in range(4):
            changes = [(bytes([i, version]), b"v%d" % version) for i in range(60)]
            state.commit(state.prepare_changes(state.latest_version, changes))
        value, proof = state.prove(bytes([1, 3]))
        assert value == b"v3" and verify_state_proof(SHA, state.root(), bytes([1, 3]), value, proof)
        # The C routine reads pages from the store's snapshot; the writer caches them.
        assert (len(state._cache) == 0) is native
        state.close()
    finally:
        store.close()
