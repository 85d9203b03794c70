"""Values: the merged table and the fresh entries, reads of every retained version,
and the conversion of stores that kept the layouts before."""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chaincity.state import AuthenticatedState, LmdbConfig, LmdbStore, compute_root
from chaincity.state.store import StateError, table_names
from chaincity.state.tree import StateCorruption
from chaincity.state.values import (
    LAYOUT,
    LAYOUT_CURRENT,
    LAYOUT_KEY,
    LAYOUT_MERGED,
    MERGE_MARKS_KEY,
    MERGE_SPAN,
    NATIVE_MERGE,
    U64_MAX,
    newest_entries,
)
from tests.state.test_native import SHA

TABLES = table_names("")
WINDOW = 4
KEYS = [b"k" + bytes([i]) for i in range(24)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LmdbStore]:
    kv = LmdbStore(LmdbConfig(str(tmp_path), durable=False, map_size_bytes=2**28))
    kv.open_tables(list(TABLES.values()))
    yield kv
    kv.close()


def _versions(
    state: AuthenticatedState, rounds: int, seed: int, model: dict[bytes, bytes] | None = None
) -> list[dict[bytes, bytes]]:
    """Commit ``rounds`` random versions (puts, deletes, keys coming back) over ``model``
    (the latest version's); the model of each."""
    rng = random.Random(seed)
    model = dict(model or {})
    models = []
    for round_no in range(rounds):
        changes: dict[bytes, bytes | None] = {}
        for key in rng.sample(KEYS, 8):
            changes[key] = None if rng.random() < 0.3 else b"v%d.%d" % (seed, round_no)
        for key, value in changes.items():
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        state.commit(state.prepare_changes(state.latest_version, changes.items()))
        models.append(dict(model))
    return models


def _check_reads(state: AuthenticatedState, models: list[dict[bytes, bytes]]) -> None:
    assert state.latest_version == len(models) - 1
    assert state.oldest_version is not None
    for version in range(state.oldest_version, len(models)):
        got = {key: state.get(key, version) for key in [*KEYS, b"new"]}
        assert {k: v for k, v in got.items() if v is not None} == models[version]


def test_reads_of_every_retained_version(store: LmdbStore) -> None:
    state = AuthenticatedState(store, SHA, window=WINDOW)
    models = _versions(state, 30, seed=1)
    _check_reads(state, models)
    assert state.root() == compute_root(SHA, models[-1])


def test_merged_values_are_no_newer_than_the_oldest_retained_version(store: LmdbStore) -> None:
    state = AuthenticatedState(store, SHA, window=WINDOW)
    models = _versions(state, MERGE_SPAN + 30, seed=2)
    latest = len(models) - 1
    assert state.oldest_version == latest - WINDOW + 1
    with store.read() as txn:
        versions = {struct.unpack_from(">Q", k)[0] for k, _ in txn.scan(TABLES["fresh"])}
        merged = dict(txn.scan(TABLES["latest"]))
        assert not any(True for _ in txn.scan(TABLES["history"]))
        items = {k for k, _ in state.latest_items(txn)}
    # Every version since the horizon is still in fresh entries; those every slice
    # merged are gone.
    assert set(range(latest - WINDOW + 1, latest + 1)) <= versions
    assert min(versions) >= latest - MERGE_SPAN - WINDOW + 2
    # Each merged value is one a key had at a version before the oldest retained.
    for key in KEYS:
        if SHA.hash(key) in merged:
            value = merged[SHA.hash(key)]
            assert any(models[v].get(key) == value for v in range(latest - WINDOW + 1))
    assert items == {SHA.hash(k) for k in KEYS if state.get(k) is not None}


def _to_legacy(store: LmdbStore, models: list[dict[bytes, bytes]], oldest: int) -> None:
    """Rewrite the values as the builds before kept them: an entry per version that
    changed a key, those replaced at ``oldest`` or before already pruned."""
    entries: dict[bytes, list[tuple[int, bytes]]] = {}
    before: dict[bytes, bytes] = {}
    for version, model in enumerate(models):
        for key in sorted(set(before) | set(model)):
            if before.get(key) != model.get(key):
                raw = b"\x00" if key not in model else b"\x01" + model[key]
                entries.setdefault(key, []).append((version, raw))
        before = model
    with store.write() as txn:
        for table in ("current", "latest", "fresh", "history"):
            txn.delete_between(TABLES[table], b"", b"\xff" * 300)
        txn.delete(TABLES["meta"], LAYOUT_KEY)
        for key, runs in entries.items():
            for (version, raw), later in zip(runs, [*runs[1:], None], strict=True):
                if later is not None and later[0] <= oldest:
                    continue  # pruned when the entry replacing it left the window
                entry = struct.pack(">H", len(key)) + key + struct.pack(">Q", U64_MAX - version)
                txn.put(TABLES["values"], entry, raw)


def test_a_store_with_the_layout_before_is_converted_on_open(store: LmdbStore) -> None:
    state = AuthenticatedState(store, SHA, window=WINDOW)
    models = _versions(state, 20, seed=3)
    models.append({**models[-1], b"new": b"n"})  # a key first written inside the window
    state.commit(state.prepare_changes(state.latest_version, [(b"new", b"n")]))
    oldest = state.oldest_version
    assert oldest is not None
    state.close()
    _to_legacy(store, models, oldest)
    with store.read() as txn:
        assert any(True for _ in txn.scan(TABLES["values"]))
    state = AuthenticatedState(store, SHA, window=WINDOW)
    with store.read() as txn:
        assert not any(True for _ in txn.scan(TABLES["values"]))
        assert txn.get(TABLES["meta"], LAYOUT_KEY) is not None
    _check_reads(state, models)
    models += _versions(state, 10, seed=4, model=models[-1])  # and it goes on
    _check_reads(state, models)
    assert state.root() == compute_root(SHA, models[-1])


def test_a_malformed_legacy_entry_is_corruption(store: LmdbStore) -> None:
    state = AuthenticatedState(store, SHA, window=WINDOW)
    models = _versions(state, 6, seed=6)
    state.close()
    _to_legacy(store, models, state.oldest_version or 0)
    with store.write() as txn:
        key, _raw = next(iter(txn.scan(TABLES["values"])))
        txn.put(TABLES["values"], key, b"\x07")
    with pytest.raises(StateCorruption):
        AuthenticatedState(store, SHA, window=WINDOW)
    with store.read() as txn:  # nothing was converted
        assert txn.get(TABLES["meta"], LAYOUT_KEY) is None
        assert not any(True for _ in txn.scan(TABLES["current"]))
        assert not any(True for _ in txn.scan(TABLES["latest"]))


def test_a_read_only_store_with_the_layout_before_says_what_to_do(tmp_path: Path) -> None:
    kv = LmdbStore(LmdbConfig(str(tmp_path), durable=False, map_size_bytes=2**28))
    kv.open_tables(list(TABLES.values()))
    state = AuthenticatedState(kv, SHA, window=WINDOW)
    models = _versions(state, 6, seed=7)
    state.close()
    _to_legacy(kv, models, state.oldest_version or 0)
    kv.close()
    readonly = LmdbStore(LmdbConfig(str(tmp_path), readonly=True, map_size_bytes=2**28))
    try:
        with pytest.raises(StateError, match="converted"):
            AuthenticatedState(readonly, SHA, window=WINDOW)
    finally:
        readonly.close()


def _to_layout_current(store: LmdbStore, models: list[dict[bytes, bytes]]) -> None:
    """Rewrite the latest values as the builds before kept them: ``current``, by key,
    every change in place (the history is the same in both layouts)."""
    with store.write() as txn:
        for table in ("latest", "fresh"):
            txn.delete_between(TABLES[table], b"", b"\xff" * 300)
        txn.put_many(TABLES["current"], sorted(models[-1].items()))
        txn.put(TABLES["meta"], LAYOUT_KEY, LAYOUT_CURRENT)


def _reopened_as(
    store: LmdbStore,
    rewrite: Callable[[LmdbStore, list[dict[bytes, bytes]]], None],
    seed: int,
) -> tuple[AuthenticatedState, list[dict[bytes, bytes]]]:
    """Versions written, their values rewritten as an earlier layout kept them, and
    the state opened again (which converts them); the model of each version."""
    state = AuthenticatedState(store, SHA, window=WINDOW)
    models = _versions(state, 12, seed=seed)
    state.close()
    rewrite(store, models)
    return AuthenticatedState(store, SHA, window=WINDOW), models


def test_a_store_keeping_values_by_key_is_converted_on_open(store: LmdbStore) -> None:
    state, models = _reopened_as(store, _to_layout_current, seed=8)
    with store.read() as txn:
        assert not any(True for _ in txn.scan(TABLES["current"]))
        assert txn.get(TABLES["meta"], LAYOUT_KEY) != LAYOUT_CURRENT
    _check_reads(state, models)
    models += _versions(state, 10, seed=9, model=models[-1])
    _check_reads(state, models)
    assert state.root() == compute_root(SHA, models[-1])


def _to_layout_merged(store: LmdbStore, models: list[dict[bytes, bytes]]) -> None:
    """Rewrite the values as layout 2 kept them: ``latest`` merged whatever the window,
    some changes still fresh, and a history of what versions replaced."""
    latest = len(models) - 1
    newest, before = models[-1], models[-2]
    fresh_keys = sorted(
        set(newest) ^ set(before) | {k for k in newest if k in before and newest[k] != before[k]}
    )
    assert fresh_keys
    with store.write() as txn:
        for table in ("latest", "fresh", "history"):
            txn.delete_between(TABLES[table], b"", b"\xff" * 300)
        txn.delete(TABLES["meta"], MERGE_MARKS_KEY)
        # The keys the last version changed are fresh (an older entry of each too);
        # `latest` has what they were before, the rest as they are.
        txn.put_many(TABLES["latest"], sorted((SHA.hash(k), v) for k, v in before.items()))
        for version, model in ((latest - 1, before), (latest, newest)):
            prefix = struct.pack(">Q", version)
            entries = [
                (prefix + SHA.hash(k), b"\x01" + model[k] if k in model else b"\x00")
                for k in fresh_keys
            ]
            txn.put_many(TABLES["fresh"], sorted(entries))
        txn.put(TABLES["history"], struct.pack(">QH", latest, 2) + b"k0", b"\x01old")
        txn.put(TABLES["meta"], LAYOUT_KEY, LAYOUT_MERGED)


def test_a_store_merging_at_once_is_converted_on_open(store: LmdbStore) -> None:
    state, models = _reopened_as(store, _to_layout_merged, seed=13)
    latest = len(models) - 1
    assert state.oldest_version == latest  # what versions before had is gone
    with store.read() as txn:
        for table in ("fresh", "history"):
            assert not any(True for _ in txn.scan(TABLES[table]))
        assert txn.get(TABLES["meta"], LAYOUT_KEY) == LAYOUT
        assert dict(txn.scan(TABLES["latest"])) == {SHA.hash(k): v for k, v in models[-1].items()}
    _check_reads(state, models)
    models += _versions(state, MERGE_SPAN + 10, seed=14, model=models[-1])  # and it goes on
    _check_reads(state, models)
    assert state.root() == compute_root(SHA, models[-1])
    state.close()
    reopened = AuthenticatedState(store, SHA, window=WINDOW)
    _check_reads(reopened, models)


def test_reads_stay_right_when_the_window_changes(store: LmdbStore) -> None:
    """A smaller window merges further at once; a larger one waits until its horizon
    passes what was merged; reads of every retained version are right throughout."""
    state = AuthenticatedState(store, SHA, window=40)
    models = _versions(state, MERGE_SPAN + 50, seed=15)
    _check_reads(state, models)
    for window, rounds in ((3, 20), (60, 30), (2, MERGE_SPAN + 5), (90, 10)):
        state.close()
        state = AuthenticatedState(store, SHA, window=window)
        _check_reads(state, models)
        for seed in range(rounds):
            models += _versions(state, 1, seed=1000 * window + seed, model=models[-1])
            _check_reads(state, models)
    assert state.root() == compute_root(SHA, models[-1])
    with store.read() as txn:
        merged = dict(txn.scan(TABLES["latest"]))
        oldest = state.oldest_version
        assert oldest is not None
    for key_hash, value in merged.items():  # no merged value is newer than `oldest`
        assert any(
            {SHA.hash(k): v for k, v in models[v].items()}.get(key_hash) == value
            for v in range(oldest + 1)
        )


@pytest.mark.parametrize("marks", [b"\x00" * 7, struct.pack(">Q", 4) * MERGE_SPAN])
def test_malformed_merge_marks_are_corruption(store: LmdbStore, marks: bytes) -> None:
    """Short, or past the version after the latest (which would drop unmerged values)."""
    state = AuthenticatedState(store, SHA, window=WINDOW)
    _versions(state, 3, seed=16)
    state.close()
    with store.write() as txn:
        txn.put(TABLES["meta"], MERGE_MARKS_KEY, marks)
    with pytest.raises(StateCorruption, match="merge marks"):
        AuthenticatedState(store, SHA, window=WINDOW)
    with store.read() as txn:  # nothing was dropped
        assert any(True for _ in txn.scan(TABLES["fresh"]))


def test_an_unknown_value_layout_is_corruption(store: LmdbStore) -> None:
    state = AuthenticatedState(store, SHA, window=WINDOW)
    _versions(state, 2, seed=10)
    state.close()
    with store.write() as txn:
        txn.put(TABLES["meta"], LAYOUT_KEY, b"\x09")
    with pytest.raises(StateCorruption, match="unknown layout"):
        AuthenticatedState(store, SHA, window=WINDOW)


def test_changes_are_merged_within_the_span_and_reopening_finds_the_rest(
    store: LmdbStore,
) -> None:
    """Reads are right whether a change is merged or not, also after reopening at any
    point of the merge cycle; fresh entries are kept no longer than the span and the
    window."""
    state = AuthenticatedState(store, SHA, window=WINDOW)
    models: list[dict[bytes, bytes]] = []
    for round_no in range(3 * MERGE_SPAN // 4):
        models += _versions(state, 3, seed=100 + round_no, model=models[-1] if models else None)
        latest = state.latest_version
        assert latest is not None
        state.close()
        state = AuthenticatedState(store, SHA, window=WINDOW)  # the index replayed
        _check_reads(state, models)
        with store.read() as txn:
            fresh = {struct.unpack_from(">Q", k)[0] for k, _ in txn.scan(TABLES["fresh"])}
        assert fresh and min(fresh) >= latest - MERGE_SPAN - WINDOW + 2
    # With no change for a whole span and window, every change is merged: `latest`
    # alone holds the latest values.
    for _ in range(MERGE_SPAN + WINDOW):
        state.commit(state.prepare_changes(state.latest_version, []))
    with store.read() as txn:
        assert not any(True for _ in txn.scan(TABLES["fresh"]))
        merged = dict(txn.scan(TABLES["latest"]))
    assert merged == {SHA.hash(k): v for k, v in models[-1].items()}


def test_a_missing_fresh_value_is_corruption(store: LmdbStore) -> None:
    state = AuthenticatedState(store, SHA, window=WINDOW)
    _versions(state, 2, seed=12)
    key_hash, version = state._pending.items()[0]  # a change not merged yet
    with store.write() as txn:
        txn.delete(TABLES["fresh"], struct.pack(">Q", version) + key_hash)
    state.close()  # its read snapshot: the next read sees the entry gone
    # (A state opened after this would not know the change: `ledger check` finds such a
    # loss, as the latest values no longer give the latest root.)
    with pytest.raises(StateCorruption, match="fresh value"):
        for key in KEYS:
            state.get(key)


@pytest.mark.skipif(NATIVE_MERGE is None, reason="the C routine is not built")
def test_the_c_steps_of_merging_match_the_python_ones() -> None:
    assert NATIVE_MERGE is not None
    fresh_entries, merge_newest = NATIVE_MERGE
    rng = random.Random(21)
    hashes = [SHA.hash(b"%d" % i) for i in range(300)]
    overlap = 0  # entries that a newer run's entry of the same key replaces
    for round_no in range(30):
        values: list[tuple[bytes, bytes | None]] = sorted(
            (h, None if rng.random() < 0.3 else b"v%d" % rng.randrange(9) * rng.randrange(3))
            for h in rng.sample(hashes, rng.choice([0, 1, 40, 200]))
        )
        version = rng.randrange(2**64)
        prefix = struct.pack(">Q", version)
        assert fresh_entries(version, values) == [
            (prefix + h, b"\x00" if v is None else b"\x01" + v) for h, v in values
        ]
        # Runs as merge reads them: each version's entries in key order, oldest first;
        # a key often in several.
        runs = [
            sorted(fresh_entries(round_no * 100 + r, rng.sample(values, len(values) // 2)))
            for r in range(rng.randrange(5))
        ]
        overlap += sum(map(len, runs)) - len({key[8:] for run in runs for key, _entry in run})
        assert merge_newest(runs, 8) == (*newest_entries(runs), None)
    assert overlap > 200


@pytest.mark.skipif(NATIVE_MERGE is None, reason="the C routine is not built")
@pytest.mark.parametrize("entry", [b"", b"\x02x", b"\x00x"])
def test_a_malformed_fresh_entry_is_found_by_both_merges(entry: bytes) -> None:
    assert NATIVE_MERGE is not None
    runs = [
        [(b"\x00" * 8 + b"a", b"\x01ok"), (b"\x00" * 8 + b"b", entry)],
        [(b"\x01" * 8 + b"c", entry)],
    ]
    _puts, _deletes, bad = NATIVE_MERGE[1](runs, 8)
    assert bad == (b"b", entry)
    with pytest.raises(StateCorruption, match="malformed fresh value of key hash 62"):
        newest_entries(runs)
    with pytest.raises(TypeError):
        NATIVE_MERGE[1]([[(b"short", b"\x00")]], 8)
    with pytest.raises(TypeError):
        NATIVE_MERGE[0](1, [(b"h", 5)])


def test_merging_stores_the_same_with_the_c_steps_and_without(tmp_path: Path) -> None:
    """Two stores written by the same versions, one merging with the Python steps."""
    dumps = []
    for native in (NATIVE_MERGE, None):
        kv = LmdbStore(LmdbConfig(str(tmp_path / str(native is None)), durable=False))
        state = AuthenticatedState(kv, SHA, window=WINDOW)
        state._native_merge = native
        models = _versions(state, MERGE_SPAN + 20, seed=5)
        _check_reads(state, models)
        with kv.read() as txn:
            dumps.append({t: list(txn.scan(t)) for t in (TABLES["latest"], TABLES["fresh"])})
        state.close()
        kv.close()
    assert dumps[0] == dumps[1] and dumps[0][TABLES["latest"]]
