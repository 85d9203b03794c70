"""The C routine that collects a version's changes against store.py's Python steps.

Both are run on the same snapshot with the same inputs: the values, history entries
and tree changes they give, and the errors they raise, must be the same.
"""

from __future__ import annotations

import random
import sys
import tracemalloc
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from chaincity.state import AuthenticatedState, LmdbConfig, LmdbStore
from chaincity.state.store import KEY_SIZE_MAX, VALUE_SIZE_MAX, StateError, StateUpdate
from chaincity.state.tree import StateCorruption
from chaincity.state.writer import NATIVE_COLLECT
from tests.state.test_native import SHA

pytestmark = pytest.mark.skipif(
    NATIVE_COLLECT is None, reason="the C routine is not built (test_native fails then)"
)

Changes = list[tuple[Any, Any]]


@pytest.fixture
def state(tmp_path: Path) -> Iterator[AuthenticatedState]:
    """Keys k0..k399 set over several versions: some merged into the latest values,
    some still in fresh entries, one version committing behind."""
    store = LmdbStore(LmdbConfig(str(tmp_path), durable=False, map_size_bytes=2**28))
    state = AuthenticatedState(store, SHA, window=4)
    assert state.native
    rng = random.Random(5)
    state.commit(state.prepare_changes(None, [(b"k%d" % i, b"v0") for i in range(400)]))
    for version in range(1, 80):
        keys = rng.sample(range(400), 20)
        changes = [(b"k%d" % i, None if i % 7 == 0 else b"v%d" % version) for i in keys]
        state.commit(state.prepare_changes(version - 1, changes))
    state.commit_behind(state.prepare_changes(79, [(b"k1", b"behind"), (b"k2", None)]))
    yield state
    state.close()
    store.close()


def _both(
    state: AuthenticatedState, changes: Changes, known: Mapping[bytes, bytes | None] | None = None
) -> tuple[Any, Any]:
    """(C, Python) outcomes: (values, history, tree changes), or (error type, message)."""
    outcomes = []
    native = state._native_collect
    for routine in (native, None):
        state._native_collect = routine
        try:
            update, tree_changes = state._collect(
                state._reader(), 80, 81, changes, known or {}, state._inflight
            )
            outcomes.append((update.values, update.history, tree_changes))
        except Exception as exc:  # compared, not handled
            outcomes.append((type(exc), str(exc)))
        finally:
            state._native_collect = native
    return outcomes[0], outcomes[1]


def test_random_changes_collect_the_same(state: AuthenticatedState) -> None:
    rng = random.Random(8)
    changed = skipped = 0
    for _ in range(40):
        keys = rng.sample(range(500), rng.choice([1, 30, 200]))
        changes: Changes = []
        for i in keys:
            roll = rng.random()
            # New keys, deleted ones, values set to what they are, and changed values.
            value = None if roll < 0.2 else b"v0" if roll < 0.4 else b"new%d" % i
            changes.append((b"k%d" % i, value))
        known = {b"k%d" % i: b"read" for i in rng.sample(keys, len(keys) // 3)}
        native, python = _both(state, changes, known)
        assert native == python
        changed += len(native[2])
        skipped += len(changes) - len(native[2])
    assert changed > 1000 and skipped > 100  # both cases were met, many times
    # What the version behind wrote is its keys' value at the base.
    native, python = _both(state, [(b"k1", b"behind"), (b"k2", b"x")])
    assert native == python
    assert [old for _key, old in native[1]] == [b"\x00"]  # k1 unchanged; k2 was deleted


def test_no_base_collects_the_same(state: AuthenticatedState) -> None:
    changes = [(b"a", b"1"), (b"b", None), (b"c", b"")]
    outcomes = []
    for routine in (state._native_collect, None):
        saved, state._native_collect = state._native_collect, routine
        update, tree_changes = state._collect(state._reader(), None, 0, changes, {}, None)
        state._native_collect = saved
        outcomes.append((update.values, update.history, tree_changes))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] == []  # no history before the first version


@pytest.mark.parametrize(
    "changes",
    [
        [(b"", b"1")],
        [(b"k" * (KEY_SIZE_MAX + 1), b"1")],
        [("text", b"1")],
        [(b"k1", b"x" * (VALUE_SIZE_MAX + 1))],
        [(b"k1", "text")],
        [(b"k1", b"1"), (b"k1", b"2")],  # a key changes twice
        [(b"k1", b"1"), (b"k", b"2"), (b"k", b"3")],
    ],
)
def test_bad_changes_raise_the_same_error(state: AuthenticatedState, changes: Changes) -> None:
    native, python = _both(state, changes)
    assert native == python
    assert native[0] is StateError


def test_a_key_set_to_what_it_was_then_changed_is_no_conflict(state: AuthenticatedState) -> None:
    native, python = _both(state, [(b"k3", b"same"), (b"k3", b"other")], {b"k3": b"same"})
    assert native == python and len(native[2]) == 1


def test_malformed_pairs_are_refused(state: AuthenticatedState) -> None:
    # (b"k1" unpacks as two ints, a key that is not bytes.)
    for changes, error in (
        ([(b"k1",)], ValueError),
        ([b"k1"], StateError),
        ([(b"k1", b"1", b"2")], ValueError),
    ):
        native, python = _both(state, changes)
        assert native[0] is python[0] is error
    native, _python = _both(state, 5)  # type: ignore[arg-type]
    assert native[0] is TypeError


def test_a_missing_fresh_entry_raises_the_same_corruption(state: AuthenticatedState) -> None:
    pending = state._pending
    key_hash = state.hasher.key(b"k-absent")
    pending.slices[key_hash[0] >> 2][key_hash] = 77  # names an entry that is not there
    try:
        native, python = _both(state, [(b"k-absent", b"1")])
    finally:
        del pending.slices[key_hash[0] >> 2][key_hash]
    assert native == python
    assert native[0] is StateCorruption and "is missing" in native[1]


def test_a_dict_subclass_of_reads_is_read_as_a_dict(state: AuthenticatedState) -> None:
    class Failing(dict[bytes, Any]):
        def __missing__(self, key: bytes) -> Any:
            raise KeyError(key)

    known: dict[bytes, bytes | None] = Failing()
    native, python = _both(state, [(b"k1", b"1")], known)
    assert native == python  # a dict subclass is copied, and read as a dict


def test_an_error_from_a_lookup_propagates_unchanged() -> None:
    assert NATIVE_COLLECT is not None

    class Broken(Exception):
        pass

    def get_latest(found: bytes) -> bytes | None:
        raise Broken(found)

    slices: list[dict[bytes, int]] = [{} for _ in range(64)]
    with pytest.raises(Broken) as raised:
        NATIVE_COLLECT(
            [(b"k1", b"1")], {}, {}, slices, 2, get_latest, get_latest, 8, True, "SHA256",
            KEY_SIZE_MAX, VALUE_SIZE_MAX, lambda key: None, lambda value: None,
            lambda raw, found, version: raw, StateError,
        )  # fmt: skip
    assert raised.value.args == (SHA.hash(b"k1"),)


def test_collect_leaks_neither_references_nor_memory(state: AuthenticatedState) -> None:
    changes = [(b"k%d" % i, b"v%d" % i) for i in range(50)] + [(b"k7", None)]
    bad = [(b"k1", b"1"), (b"k1", b"2")]
    txn = state._reader()
    calls = 300

    def run_all() -> int:
        done = 0
        for _ in range(calls):
            update, _tree = state._collect(txn, 80, 81, changes, {}, state._inflight)
            done += isinstance(update, StateUpdate)
            try:
                state._collect(txn, 80, 81, bad, {}, None)
            except StateError:
                done += 1
        return done

    run_all()
    value = changes[0][1]
    refs = sys.getrefcount(value)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        assert run_all() == 2 * calls
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert sys.getrefcount(value) == refs
    assert grown < 32 * calls


def test_lookups_that_change_the_inputs_do_not_upset_the_routine() -> None:
    """A lookup may run any code: here it empties the caller's lists and the index."""
    assert NATIVE_COLLECT is not None
    pair = [bytes([107, 49]), bytes([49])]  # made at run time: only the lists hold them
    items: list[Any] = [pair, (b"k2", b"2")]
    slices: list[dict[bytes, int]] = [{} for _ in range(64)]
    key_hash = SHA.hash(b"k2")
    slices[key_hash[0] >> 2][key_hash] = 7
    seen: list[tuple[bytes, int]] = []

    def get_latest(found: bytes) -> bytes | None:
        items.clear()
        pair.clear()
        return None

    def get_fresh(found: bytes) -> bytes | None:
        slices[key_hash[0] >> 2].clear()
        return b"\x01old"

    def fresh_value(raw: bytes | None, found: bytes, version: int) -> bytes | None:
        seen.append((found, version))
        return None if raw is None else raw[1:]

    values, history, tree = NATIVE_COLLECT(
        items, {}, {}, slices, 2, get_latest, get_fresh, 8, True, "SHA256",
        KEY_SIZE_MAX, VALUE_SIZE_MAX, lambda key: None, lambda value: None, fresh_value,
        StateError,
    )  # fmt: skip
    assert sorted(v for _h, v in values) == [b"1", b"2"]
    assert sorted(key for key, _entry in history) == [
        b"\x00" * 7 + b"\x08\x00\x02k1",
        b"\x00" * 7 + b"\x08\x00\x02k2",
    ]
    assert sorted(entry for _k, entry in history) == [b"\x00", b"\x01old"]
    assert seen == [(key_hash, 7)] and len(tree) == 2
