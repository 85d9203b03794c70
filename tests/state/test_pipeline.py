"""Committing behind: a version's commit finishes while the next one is prepared on it."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from chaincity.state import AuthenticatedState, LmdbConfig, LmdbStore, StorageError
from chaincity.state.kv import BackgroundWriter, KVStore, WriteTxn
from chaincity.state.store import StateConflict, table_names
from tests.state.test_native import SHA

TABLES = table_names("")


def _open(path: Path) -> LmdbStore:
    store = LmdbStore(LmdbConfig(str(path), durable=False, map_size_bytes=2**28))
    store.open_tables(list(TABLES.values()))
    return store


def _dump(store: LmdbStore) -> dict[str, list[tuple[bytes, bytes]]]:
    with store.read() as txn:
        return {table: list(txn.scan(table)) for table in TABLES.values()}


def _histories(seed: int, versions: int) -> list[list[tuple[bytes, bytes | None]]]:
    """Changes of each version: new keys, changed and unchanged values, and deletes."""
    rng = random.Random(seed)
    keys = [b"k%d" % i for i in range(600)]
    out = []
    for version in range(versions):
        chosen = rng.sample(keys, rng.choice([1, 40, 300]))
        changes: list[tuple[bytes, bytes | None]] = []
        for key in chosen:
            roll = rng.random()
            value = None if roll < 0.15 else b"same" if roll < 0.3 else b"v%d" % version
            changes.append((key, value))
        out.append(changes)
    return out


def _synchronous(store: LmdbStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits finish before ``transaction`` returns: the version behind is already in
    LMDB while it is prepared on and read around, the case a snapshot opened too late
    would get wrong."""
    monkeypatch.setattr(store, "background_writer", lambda: BackgroundWriter(store))


def _open_state(
    path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> tuple[LmdbStore, AuthenticatedState]:
    """A state whose commits behind run on LMDB's writer thread, or finish at once."""
    store = _open(path)
    if writer == "sync":
        _synchronous(store, monkeypatch)
    return store, AuthenticatedState(store, SHA, window=4)


@pytest.mark.parametrize(
    ("native", "writer"), [(True, "thread"), (False, "thread"), (True, "sync")]
)
def test_committing_behind_stores_exactly_what_committing_in_turn_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool, writer: str
) -> None:
    histories = _histories(7, 90)  # past the 64 versions in which a change is merged
    options = {"window": 3, "copy_after_pct": 100, "native": native}
    in_turn_store, behind_store = _open(tmp_path / "a"), _open(tmp_path / "b")
    if writer == "sync":
        _synchronous(behind_store, monkeypatch)
    in_turn = AuthenticatedState(in_turn_store, SHA, **options)
    behind = AuthenticatedState(behind_store, SHA, **options)
    refreshing = 0
    for changes in histories:
        update = in_turn.prepare_changes(in_turn.latest_version, changes)
        in_turn.commit(update)
        # Prepared while the version before is still committing behind.
        behind_update = behind.prepare_changes(behind.tip_version, changes)
        assert behind_update.refreshed == update.refreshed
        assert behind_update.root == update.root
        assert behind_update.pages == update.pages
        behind.commit_behind(behind_update)
        # What the next version copies forward was chosen in this one's transaction:
        # the same as choosing it now, from what committed.
        assert update.next_refresh is not None
        with in_turn_store.read() as txn:
            assert update.next_refresh == in_turn.generations.to_refresh(txn, update.version + 1)
        refreshing += bool(update.refreshed)
    behind.settle()
    assert refreshing >= 3  # the histories copy generations forward
    assert behind.latest_version == in_turn.latest_version == len(histories) - 1
    assert _dump(behind_store) == _dump(in_turn_store)
    in_turn.close()
    behind.close()
    in_turn_store.close()
    behind_store.close()


@pytest.mark.parametrize("writer", ["thread", "sync"])
def test_reads_see_the_latest_version_until_the_one_behind_settles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    store, state = _open_state(tmp_path, monkeypatch, writer)
    # Version v sets a key of the slice of key hashes it merges into the latest values
    # at once: a snapshot that held version v would show it before v is the latest.
    in_slice = {}
    for i in range(5000):
        in_slice.setdefault(state.hasher.key(b"k%d" % i)[0] >> 2, b"k%d" % i)
    state.commit(state.prepare_changes(None, [(b"a", b"0")]))
    for version in range(1, 6):
        key = in_slice[version % 64]
        state.commit_behind(
            state.prepare_changes(state.tip_version, [(b"a", b"%d" % version), (key, b"new")])
        )
        assert (state.latest_version, state.tip_version) == (version - 1, version)
        assert state.get(key) is None and state.get(b"a") == b"%d" % (version - 1)
        value, _proof = state.prove(key)
        assert value is None
        if version > 1:
            assert state.get(in_slice[(version - 1) % 64]) == b"new"
    # Built on the version behind; the latest one is no longer a base.
    after = state.prepare_changes(5, [(b"a", b"6"), (b"c", b"6")])
    assert after.changed_keys == 2
    with pytest.raises(StateConflict):
        state.prepare_changes(4, [(b"a", b"x")])
    state.settle()
    assert (state.latest_version, state.tip_version) == (5, 5)
    assert state.get(b"a") == b"5" and state.get(in_slice[5]) == b"new"
    state.commit_behind(after)
    state.close()  # settles it
    reopened = AuthenticatedState(store, SHA, window=4)
    assert reopened.latest_version == 6
    assert [reopened.get(k) for k in (b"a", in_slice[5], b"c")] == [b"6", b"new", b"6"]
    # What version 5 had, before the one built behind it changed it.
    assert [reopened.get(k, 5) for k in (b"a", in_slice[5], b"c")] == [b"5", b"new", None]
    assert reopened.root() == state.root()
    reopened.close()
    store.close()


@pytest.mark.parametrize("writer", ["thread", "sync"])
def test_an_overlay_executes_on_the_version_committing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    store, state = _open_state(tmp_path, monkeypatch, writer)
    state.commit(state.prepare_changes(None, [(b"a", b"0"), (b"b", b"0"), (b"c", b"0")]))
    stale_view = state.overlay()
    state.commit_behind(state.prepare_changes(0, [(b"a", b"1"), (b"b", None)]))
    view = state.overlay()
    assert view.base_version == 1 and state.latest_version == 0
    # What the version behind wrote, deleted, and left alone (read from the store).
    assert [view.get(k) for k in (b"a", b"b", b"c", b"d")] == [b"1", None, b"0", None]
    assert state.get(b"a") == b"0"  # reads outside an overlay: the latest version only
    view.put(b"c", b"2")
    view.put(b"d", b"2")
    update = state.prepare(view)
    with pytest.raises(StateConflict):
        state.prepare(stale_view)  # built on the version before the tip
    state.commit_behind(update)
    state.settle()
    assert [state.get(k) for k in (b"a", b"b", b"c", b"d")] == [b"1", None, b"2", b"2"]
    assert [state.get(k, 1) for k in (b"a", b"b", b"c", b"d")] == [b"1", None, b"0", None]
    assert state.root() == update.root
    state.close()
    store.close()


class _Discard(Exception):
    pass


class _FailingWriter(BackgroundWriter):
    """Its commits fail, as a full disk would make them: nothing is stored."""

    def __init__(self, store: KVStore) -> None:
        super().__init__(store)
        self.failed = False

    @contextmanager
    def transaction(self) -> Iterator[WriteTxn]:
        try:
            with self._store.write() as txn:
                yield txn
                raise _Discard
        except _Discard:
            self.failed = True

    def wait(self) -> None:
        failed, self.failed = self.failed, False
        if failed:
            raise StorageError("commit failed: no space left on device")


def _failing_behind(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[LmdbStore, AuthenticatedState]:
    """Version 0 sets a=1; version 1 (a=2) commits behind on a writer whose commits fail."""
    store = _open(path)
    state = AuthenticatedState(store, SHA, window=4)
    state.commit(state.prepare_changes(None, [(b"a", b"1")]))
    monkeypatch.setattr(store, "background_writer", lambda: _FailingWriter(store))
    state.commit_behind(state.prepare_changes(0, [(b"a", b"2")]))
    return store, state


def test_a_failed_commit_behind_drops_its_version_and_what_was_built_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, state = _failing_behind(tmp_path, monkeypatch)
    root = state.root(0)
    built_on_it = state.prepare_changes(1, [(b"b", b"3")])
    with pytest.raises(StorageError, match="no space"):
        state.settle()
    assert (state.latest_version, state.tip_version) == (0, 0)
    assert state.get(b"a") == b"1" and state.root() == root
    with pytest.raises(StateConflict):
        state.commit(built_on_it)
    # The state goes on from the latest version, as if the failed one was never made.
    state.commit(state.prepare_changes(0, [(b"a", b"4")]))
    assert state.get(b"a") == b"4" and state.latest_version == 1
    state.close()
    store.close()


def test_an_overlay_on_a_version_whose_commit_failed_cannot_be_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, state = _failing_behind(tmp_path, monkeypatch)
    view = state.overlay()
    assert view.get(b"a") == b"2"
    view.put(b"b", b"3")
    with pytest.raises(StorageError):
        state.settle()
    with pytest.raises(StateConflict):
        state.prepare(view)
    assert state.overlay().get(b"a") == b"1"
    state.close()
    store.close()


def test_lmdb_background_writer_commits_on_its_thread_and_reports_when_durable(
    tmp_path: Path,
) -> None:
    store = LmdbStore(LmdbConfig(str(tmp_path), durable=True, map_size_bytes=2**26))
    store.open_tables(["t"])
    threads_before = threading.active_count()
    writer = store.background_writer()
    with writer.transaction() as txn:
        txn.put("t", b"a", b"1")
    writer.wait()
    with store.read() as txn:
        assert txn.get("t", b"a") == b"1"
    # A failure inside the transaction aborts it: nothing of it is stored.
    with pytest.raises(ValueError), writer.transaction() as txn:
        txn.put("t", b"b", b"2")
        raise ValueError("the caller failed")
    with pytest.raises(StorageError), writer.transaction() as txn:
        txn.put_many("t", [(b"0", b"out of order")], append=True)
    # The next transaction waits for the commit before it.
    with writer.transaction() as txn:
        txn.put("t", b"c", b"3")
    with writer.transaction() as txn:
        assert txn.get("t", b"c") == b"3"
        txn.delete("t", b"a")
    writer.close()
    assert threading.active_count() == threads_before
    with store.read() as txn:
        assert list(txn.scan("t")) == [(b"c", b"3")]
    store.close()
