"""The C routine that collects a version's changes against store.py's Python steps.

Both are run with the same inputs: the values and tree changes they give, and the
errors they raise, must be the same.
"""

from __future__ import annotations

import random
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaincity.state import AuthenticatedState, LmdbConfig, LmdbStore
from chaincity.state.store import KEY_SIZE_MAX, VALUE_SIZE_MAX, StateError, StateUpdate
from chaincity.state.writer import NATIVE_COLLECT
from tests.state.test_native import SHA

pytestmark = pytest.mark.skipif(
    NATIVE_COLLECT is None, reason="the C routine is not built (test_native fails then)"
)

Changes = list[tuple[Any, Any]]


@pytest.fixture
def state(tmp_path: Path) -> Iterator[AuthenticatedState]:
    store = LmdbStore(LmdbConfig(str(tmp_path), durable=False, map_size_bytes=2**28))
    state = AuthenticatedState(store, SHA, window=4)
    assert state.native
    state.commit(state.prepare_changes(None, [(b"k%d" % i, b"v0") for i in range(400)]))
    yield state
    state.close()
    store.close()


def _both(state: AuthenticatedState, changes: Changes) -> tuple[Any, Any]:
    """(C, Python) outcomes: (values, tree changes), or (error type, message)."""
    outcomes = []
    native = state._native_collect
    for routine in (native, None):
        state._native_collect = routine
        try:
            update, tree_changes = state._collect(0, 1, changes)
            outcomes.append((update.values, tree_changes))
        except Exception as exc:  # compared, not handled
            outcomes.append((type(exc), str(exc)))
        finally:
            state._native_collect = native
    return outcomes[0], outcomes[1]


def test_random_changes_collect_the_same(state: AuthenticatedState) -> None:
    rng = random.Random(8)
    collected = deletes = 0
    for _ in range(40):
        keys = rng.sample(range(500), rng.choice([0, 1, 30, 200]))
        changes: Changes = []
        for i in keys:
            roll = rng.random()
            # New keys, deleted ones, values set to what they are, and changed values.
            value = None if roll < 0.2 else b"v0" if roll < 0.4 else b"new%d" % i
            changes.append((b"k%d" % i, value))
        native, python = _both(state, changes)
        assert native == python
        values, tree = native
        # Every change, in key hash order, each value's hash beside it.
        assert [h for h, _v in values] == sorted(SHA.hash(k) for k, _v in changes)
        assert [(h, None if v is None else SHA.hash(v)) for h, v in values] == tree
        collected += len(values)
        deletes += sum(v is None for _h, v in values)
    assert collected > 1000 and deletes > 200


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
        [(b"k3", b"same"), (b"k3", b"same")],  # even to the same value
    ],
)
def test_bad_changes_raise_the_same_error(state: AuthenticatedState, changes: Changes) -> None:
    native, python = _both(state, changes)
    assert native == python
    assert native[0] is StateError


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


def test_an_error_from_a_check_propagates_unchanged() -> None:
    assert NATIVE_COLLECT is not None

    class Broken(Exception):
        pass

    def check_key(key: bytes) -> None:
        raise Broken(key)

    with pytest.raises(Broken) as raised:
        NATIVE_COLLECT(
            [(b"", b"1")], "SHA256", KEY_SIZE_MAX, VALUE_SIZE_MAX, check_key,
            lambda value: None, StateError,
        )  # fmt: skip
    assert raised.value.args == (b"",)


def test_a_check_that_passes_what_it_should_refuse_is_a_system_error() -> None:
    assert NATIVE_COLLECT is not None
    with pytest.raises(SystemError):
        NATIVE_COLLECT(
            [(b"", b"1")], "SHA256", KEY_SIZE_MAX, VALUE_SIZE_MAX, lambda key: None,
            lambda value: None, StateError,
        )  # fmt: skip


def test_a_check_that_changes_the_inputs_does_not_upset_the_routine() -> None:
    """A check may run any code: here it empties the caller's lists."""
    assert NATIVE_COLLECT is not None
    pair = [bytes([107, 49]), bytes([49])]  # made at run time: only the lists hold them
    items: list[Any] = [pair, (b"k2", b"2"), (b"", b"3")]

    def check_key(key: bytes) -> None:
        items.clear()
        pair.clear()
        raise StateError("empty key")

    with pytest.raises(StateError, match="empty key"):
        NATIVE_COLLECT(
            items, "SHA256", KEY_SIZE_MAX, VALUE_SIZE_MAX, check_key, lambda value: None,
            StateError,
        )  # fmt: skip
    assert items == [] and pair == []


def test_collect_leaks_neither_references_nor_memory(state: AuthenticatedState) -> None:
    changes = [(b"k%d" % i, b"v%d" % i) for i in range(50)] + [(b"k70", None)]
    bad = [(b"k1", b"1"), (b"k1", b"2")]
    calls = 300

    def run_all() -> int:
        done = 0
        for _ in range(calls):
            update, _tree = state._collect(0, 1, changes)
            done += isinstance(update, StateUpdate)
            try:
                state._collect(0, 1, bad)
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
