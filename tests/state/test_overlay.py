"""Overlays and namespaces: isolation, bounds, checkpoints, conflicts and versions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaincity.crypto import get_suite
from chaincity.state import (
    KEY_SIZE_MAX,
    VALUE_SIZE_MAX,
    AuthenticatedState,
    LmdbConfig,
    LmdbStore,
    StateConflict,
    StateError,
    StateVersionError,
    compute_root,
    namespaced_key,
)

SUITE = get_suite("ed25519-sha256")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[AuthenticatedState]:
    store = LmdbStore(LmdbConfig(str(tmp_path), durable=False, map_size_bytes=2**28))
    yield AuthenticatedState(store, SUITE, window=2)
    store.close()


def test_namespaces_cannot_reach_each_other(state: AuthenticatedState) -> None:
    view = state.overlay()
    view.namespace("ab").put(b"c", b"1")
    assert view.namespace("a").get(b"bc") is None
    with pytest.raises(StateError):
        view.namespace("a").get(b"")
    assert namespaced_key("ab", b"c") != namespaced_key("a", b"bc")


def test_bounds(state: AuthenticatedState) -> None:
    names = state.overlay().namespace("kv")
    longest = KEY_SIZE_MAX - 3
    names.put(b"k" * longest, b"v" * VALUE_SIZE_MAX)
    with pytest.raises(StateError):
        names.put(b"k" * (longest + 1), b"v")
    with pytest.raises(StateError):
        names.get(b"k" * (longest + 1))
    with pytest.raises(StateError):
        names.delete("k")  # type: ignore[arg-type]
    with pytest.raises(StateError):
        names.put(b"k", b"v" * (VALUE_SIZE_MAX + 1))
    with pytest.raises(StateError):
        state.overlay().namespace("")
    with pytest.raises(StateError):
        state.overlay().namespace("x" * 65)


def test_failed_transaction_reverts_only_its_writes(state: AuthenticatedState) -> None:
    view = state.overlay()
    names = view.namespace("kv")
    names.put(b"a", b"1")
    mark = view.checkpoint()
    names.put(b"a", b"2")
    names.put(b"b", b"3")
    names.delete(b"a")
    view.revert(mark)
    assert names.get(b"a") == b"1" and names.get(b"b") is None
    assert view.changes() == [(namespaced_key("kv", b"a"), b"1")]
    with pytest.raises(StateError):
        view.revert(99)


def test_discarded_overlay_leaves_no_trace(state: AuthenticatedState) -> None:
    view = state.overlay()
    view.namespace("kv").put(b"a", b"1")
    state.commit(state.prepare(view))
    dropped = state.overlay()
    dropped.namespace("kv").put(b"a", b"2")
    state.compute_root(dropped)
    view = state.overlay()
    view.namespace("kv").put(b"b", b"3")
    state.commit(state.prepare(view))
    expected = {namespaced_key("kv", b"a"): b"1", namespaced_key("kv", b"b"): b"3"}
    assert state.root() == compute_root(SUITE, expected)


def test_stale_overlay_is_refused(state: AuthenticatedState) -> None:
    first, second = state.overlay(), state.overlay()
    first.namespace("kv").put(b"a", b"1")
    second.namespace("kv").put(b"a", b"2")
    update = state.prepare(second)
    state.commit(state.prepare(first))
    with pytest.raises(StateConflict):
        state.prepare(second)
    with pytest.raises(StateConflict):
        state.commit(update)
    assert state.get(namespaced_key("kv", b"a")) == b"1"


def test_versions_window_and_roots(state: AuthenticatedState) -> None:
    key = namespaced_key("kv", b"a")
    roots = []
    for i in range(5):
        view = state.overlay()
        view.put(key, b"%d" % i)
        state.commit(state.prepare(view))
        roots.append(state.root())
    assert state.get(key, 4) == b"4" and state.get(key, 3) == b"3"
    with pytest.raises(StateVersionError):
        state.get(key, 2)
    with pytest.raises(StateVersionError):
        state.get(key, 5)
    assert [state.root(v) for v in range(5)] == roots  # roots outlive pruning
    empty = state.overlay()
    state.commit(state.prepare(empty))
    assert state.root() == roots[-1]


def test_raw_changes_must_name_each_key_once(state: AuthenticatedState) -> None:
    key = namespaced_key("kv", b"a")
    with pytest.raises(StateError):
        state.prepare_changes(None, [(key, b"1"), (key, b"2")])
    with pytest.raises(StateError):
        state.prepare_changes(None, [(b"", b"1")])
    assert state.latest_version is None
