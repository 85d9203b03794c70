"""The latest version's read snapshot and the overlay's remembered base lookups."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from chaincity.crypto import get_suite
from chaincity.state import (
    AuthenticatedState,
    LmdbConfig,
    LmdbStore,
    StateVersionError,
    compute_root,
)
from chaincity.state.kv import KVStore, ReadTxn, WriteTxn
from chaincity.state.tree import StateCorruption

SUITE = get_suite("ed25519-sha256")


class _CountingRead(ReadTxn):
    """A read transaction that counts its lookups of values (latest, fresh, history), and
    knows if it was closed (reading a closed one fails the test)."""

    def __init__(self, inner: ReadTxn, store: CountingStore) -> None:
        self.inner = inner
        self.store = store
        self.closed = False

    def _check(self) -> None:
        assert not self.closed, "a closed read snapshot was read"

    def get(self, table: str, key: bytes) -> bytes | None:
        self._check()
        if table.endswith(("state.latest", "state.fresh", "state.history")):
            self.store.value_reads += 1
        return self.inner.get(table, key)

    def seek(self, table: str, key: bytes) -> tuple[bytes, bytes] | None:
        self._check()
        return self.inner.seek(table, key)

    def scan(self, table: str, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        self._check()
        return self.inner.scan(table, start)


class CountingStore(KVStore):
    """An LmdbStore that counts open read transactions."""

    def __init__(self, path: str) -> None:
        self.inner = LmdbStore(LmdbConfig(path, durable=False, map_size_bytes=2**28))
        self.opened = 0
        self.open_now = 0
        self.value_reads = 0
        self.txns: list[_CountingRead] = []

    def open_tables(self, names: Sequence[str]) -> None:
        self.inner.open_tables(names)

    @contextmanager
    def _read(self) -> Iterator[ReadTxn]:
        with self.inner.read() as txn:
            wrapped = _CountingRead(txn, self)
            self.txns.append(wrapped)
            self.opened += 1
            self.open_now += 1
            try:
                yield wrapped
            finally:
                wrapped.closed = True
                self.open_now -= 1

    def read(self) -> AbstractContextManager[ReadTxn]:
        return self._read()

    def write(self) -> AbstractContextManager[WriteTxn]:
        return self.inner.write()

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    counting = CountingStore(str(tmp_path))
    yield counting
    counting.close()


def _commit(state: AuthenticatedState, changes: dict[bytes, bytes | None]) -> None:
    state.commit(state.prepare_changes(state.latest_version, changes.items()))


def test_reads_between_commits_share_one_snapshot(store: CountingStore) -> None:
    state = AuthenticatedState(store, SUITE, window=4)
    _commit(state, {b"a": b"1", b"b": b"2"})
    opened = store.opened
    for _ in range(50):
        assert state.get(b"a") == b"1"
        assert state.get(b"zz") is None
        assert state.prove(b"b")[0] == b"2"
        assert state.root() == state.root(0)
    assert store.opened == opened + 1
    assert store.open_now == 1 and state.snapshot_open


def test_a_commit_releases_the_snapshot_and_reads_see_the_new_version(
    store: CountingStore,
) -> None:
    state = AuthenticatedState(store, SUITE, window=4)
    _commit(state, {b"a": b"1", b"b": b"2"})
    assert state.get(b"a") == b"1"
    before = store.txns[-1]
    _commit(state, {b"a": b"3", b"b": None})
    assert before.closed and store.open_now == 0 and not state.snapshot_open
    assert state.get(b"a") == b"3"
    assert state.get(b"b") is None
    assert store.txns[-1] is not before
    # Older retained versions are served by the new snapshot too.
    assert state.get(b"a", 0) == b"1"
    assert state.get(b"b", 0) == b"2"
    value, proof = state.prove(b"a", 0)
    assert value == b"1" and proof is not None
    assert store.open_now == 1


def test_an_update_prepared_from_the_snapshot_matches_a_fresh_state(
    store: CountingStore, tmp_path: Path
) -> None:
    state = AuthenticatedState(store, SUITE, window=3)
    fresh_store = LmdbStore(LmdbConfig(str(tmp_path / "fresh"), durable=False))
    try:
        for round_no in range(6):
            changes: dict[bytes, bytes | None] = {
                bytes([i]): bytes([round_no, i]) for i in range(round_no, 40, 3)
            }
            changes[bytes([round_no])] = None
            for i in range(0, 40, 7):
                state.get(bytes([i]))  # opens the snapshot that prepare then uses
            update = state.prepare_changes(state.latest_version, changes.items())
            # Each time from a state that never held a snapshot across versions.
            fresh = AuthenticatedState(fresh_store, SUITE, window=3)
            expected = fresh.prepare_changes(fresh.latest_version, changes.items())
            fresh.commit(expected)
            fresh.close()
            assert (update.root, sorted(update.values)) == (expected.root, sorted(expected.values))
            state.commit(update)
            assert store.open_now == 0
    finally:
        fresh_store.close()


def test_a_version_change_without_after_commit_still_drops_the_snapshot(
    store: CountingStore,
) -> None:
    state = AuthenticatedState(store, SUITE, window=4)
    _commit(state, {b"a": b"1"})
    update = state.prepare_changes(0, [(b"a", b"2")])
    assert state.get(b"a") == b"1"
    held = store.txns[-1]
    # The update's transaction commits; until after_commit the latest is still 0,
    # and reads of it stay correct.
    with store.write() as txn:
        state.write_update(txn, update)
    assert state.get(b"a") == b"1" and state.get(b"a", 0) == b"1"
    # A latest version moved by other means than after_commit is still never read
    # through the old snapshot. (Its values may be: the index of the changes not yet
    # merged moves in after_commit, so only the snapshot is checked here.)
    state._latest = 1  # as if a bookkeeping path skipped the release
    state.get(b"a")
    assert held.closed and store.open_now == 1


def test_nothing_leaks_over_many_versions_and_close_releases(store: CountingStore) -> None:
    state = AuthenticatedState(store, SUITE, window=2)
    for round_no in range(30):
        view = state.overlay()
        for i in range(5):
            key = bytes([i])
            old = view.get(key)
            view.put(key, (old or b"")[-4:] + bytes([round_no]))
        state.commit(state.prepare(view))
        assert store.open_now == 0
        assert state.get(b"\x00") is not None
        assert store.open_now == 1
    with pytest.raises(StateVersionError):
        state.get(b"\x00", 0)
    assert store.open_now == 1
    state.close()
    assert store.open_now == 0 and not state.snapshot_open
    assert state.get(b"\x01") is not None  # a read after close opens one again
    state.close()
    assert store.open_now == 0


def test_a_failed_read_releases_the_snapshot(store: CountingStore) -> None:
    state = AuthenticatedState(store, SUITE, window=4)
    _commit(state, {b"a": b"1"})
    _commit(state, {b"a": b"2"})
    assert state.get(b"a", 0) == b"1"
    fresh = state.tables["fresh"]
    with store.write() as txn:  # a damaged entry: neither present nor absent
        txn.put(fresh, bytes(8) + SUITE.hash(b"a"), b"\x07")
    state.close()
    with pytest.raises(StateCorruption):
        state.get(b"a", 0)
    assert store.open_now == 0 and not state.snapshot_open


def test_prepare_looks_up_no_value(store: CountingStore) -> None:
    state = AuthenticatedState(store, SUITE, window=4)
    _commit(state, {bytes([i]): b"v" for i in range(20)})
    view = state.overlay()
    for i in range(10, 30):  # present and absent keys
        assert view.get(bytes([i])) == (b"v" if i < 20 else None)
        view.put(bytes([i]), b"w")
    assert view.get(b"\x0a") == b"w"
    view.put(b"\x03", b"unread")  # written blind
    reads = store.value_reads
    update = state.prepare(view)
    assert store.value_reads == reads
    expected = state.prepare_changes(0, view.changes())
    assert store.value_reads == reads
    assert expected.root == update.root
    assert sorted(expected.values) == sorted(update.values)
    state.commit(update)
    assert state.get(b"\x0a") == b"w" and state.get(b"\x03") == b"unread"


def test_repeated_overlay_reads_look_up_once(store: CountingStore) -> None:
    state = AuthenticatedState(store, SUITE, window=4)
    _commit(state, {b"k": b"v"})
    view = state.overlay()
    reads = store.value_reads
    for _ in range(10):
        assert view.get(b"k") == b"v"
        assert view.get(b"absent") is None
    assert store.value_reads == reads + 2


def test_deletes_and_unchanged_values_keep_the_root_of_the_values(store: CountingStore) -> None:
    state = AuthenticatedState(store, SUITE, window=4)
    _commit(state, {b"a": b"1", b"b": b"2", b"c": b"3"})
    _commit(state, {b"a": None, b"b": b"22"})  # a tombstone and a second entry
    view = state.overlay()
    for key in (b"a", b"b", b"c", b"d"):
        view.get(key)
    view.put(b"a", b"back")  # over a tombstone
    view.put(b"b", b"22")  # unchanged: its leaf rewritten as it was
    view.put(b"c", None)  # deleted after a read
    view.put(b"d", None)  # deleting an absent key
    update = state.prepare(view)
    expected = state.prepare_changes(1, view.changes())
    assert update.root == expected.root == compute_root(SUITE, {b"b": b"22", b"a": b"back"})
    assert sorted(update.values) == sorted(expected.values)
    assert update.changed_keys == expected.changed_keys == 4  # nothing is looked up
    state.commit(update)
    assert [state.get(k) for k in (b"a", b"b", b"c", b"d")] == [b"back", b"22", None, None]
    assert [state.get(k, 1) for k in (b"a", b"b", b"c", b"d")] == [None, b"22", b"3", None]
