"""The values of a state's keys: the merged ones in one table, the newer ones as
fresh entries by version.

- ``latest``: key hash -> value, for every key present once the changes merged
  so far are applied. Keyed by the key's hash, the tree's order, so that a slice
  of the hash space is a run of its pages.
- ``fresh``: be64(v) + key hash -> 0x01 + value, or 0x00: what version ``v``
  set each key it changed to (present with that value, or absent). Appended in
  key-hash order, and dropped a version at a time once every slice merged it.

**Merging.** Writing each change into ``latest`` where it stands would dirty
one random LMDB page (4 KiB) per key changed: at 10^6 keys, more than half of
what a version writes. Instead a version appends its changes to ``fresh`` and
merges one slice of the hash space into ``latest``: version ``v`` merges slice
``v % MERGE_SPAN`` (the key hashes whose first byte is in that slice), taking
for each key in it the newest of the fresh entries of the versions the slice
has not merged, up to the **horizon** ``v - window``. ``latest`` therefore never
holds a change that a retained version (``v - window + 1`` on) might not have
seen, and reading a retained version needs no record of what a change
replaced: no value is looked up when a version is prepared. The next version
each slice merges from is kept in ``meta`` (``merged_to``); fresh entries of
versions every slice has merged are dropped. With the same window throughout,
every change is merged within ``window + MERGE_SPAN`` versions, and the keys
one merge writes share the slice's run of LMDB pages: at 10^6 keys and
1,000-key versions, about three keys a page instead of one.

:class:`Pending` is the index, in memory, of the fresh entries stored: key hash
-> the newest version whose fresh entry holds its value, and the key hashes of
each version, to drop with it. It is rebuilt from ``fresh`` when a state opens,
so it needs no table of its own and is right after any crash (``fresh``,
``latest``, the merges and their marks are written in the version's one
transaction).

The value of a key at the latest version is its fresh entry if the index names
one, else its ``latest`` entry: one lookup either way. At an older retained
version ``at``, a key the index names at ``at`` or before reads the same; one
changed after ``at`` reads its fresh entry of the newest version up to ``at``
that changed it, looking back version by version to the first stored, else
its ``latest`` value (merged changes are all older than every retained
version).

Stores written before kept what each change replaced in a ``history`` table
and merged every change within ``MERGE_SPAN`` versions (layout 2); before that
``current`` (key -> value, overwritten where it stands; layout 1), and before
that one table, ``values``: be16(len) + key + be64(~v) -> 0x01 + value, or
0x00, an entry per version that changed a key. All are converted when opened
read-write (:func:`convert_legacy`, :func:`convert_current`,
:func:`convert_merged`), in one transaction; the converted version is then the
oldest a read can ask for.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from itertools import pairwise, repeat

from chaincity.state.kv import ReadTxn, WriteTxn
from chaincity.state.tree import StateCorruption

FreshEntries = Callable[[int, list[tuple[bytes, bytes | None]]], list[tuple[bytes, bytes]]]
MergeNewest = Callable[
    [list[list[tuple[bytes, bytes]]], int],
    tuple[list[tuple[bytes, bytes]], list[bytes], tuple[bytes, bytes] | None],
]


def _find_native() -> tuple[FreshEntries, MergeNewest] | None:
    """The C steps of :func:`merge` (_treecore.c), where built; these steps are the
    reference."""
    try:
        from chaincity.state._treecore import fresh_entries, merge_newest
    except ImportError:
        return None
    return fresh_entries, merge_newest


NATIVE_MERGE = _find_native()

PRESENT = b"\x01"
ABSENT = b"\x00"
LAYOUT_KEY = b"value_layout"  # in the meta table: which layout the values use
LAYOUT = b"\x03"  # latest (by key hash) and fresh, merged up to the horizon
LAYOUT_MERGED = b"\x02"  # the layout before: latest and fresh, merged at once; history
LAYOUT_CURRENT = b"\x01"  # the one before: current (by key) and history
MERGE_MARKS_KEY = b"merged_to"  # in the meta table: each slice's next version to merge
U64_MAX = 2**64 - 1
# Slices of the hash space, one merged a version (a slice: four values of the key
# hash's first byte).
MERGE_SPAN = 64
SLICE_SHIFT = 2

_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")
_LEGACY_END = b"\xff" * 300  # above every legacy entry key (at most 2 + 256 + 8 bytes)


def history_key(version: int, key: bytes) -> bytes:
    return _U64.pack(version) + _U16.pack(len(key)) + key


def history_end(version: int) -> bytes:
    """Above every history key of versions up to ``version``."""
    return _U64.pack(version + 1)


def decode_entry(raw: bytes, what: str, key: bytes) -> bytes | None:
    """The value a history or fresh entry holds (None: absent); ``what`` and ``key``
    name it if it is malformed."""
    if raw[:1] == PRESENT:
        return raw[1:]
    if raw != ABSENT:
        raise StateCorruption(f"malformed {what} {key.hex()}")
    return None


def decode_history(raw: bytes, key: bytes) -> bytes | None:
    return decode_entry(raw, "history entry for key", key)


def fresh_value(raw: bytes | None, key_hash: bytes, version: int) -> bytes | None:
    """The value of the fresh entry of ``key_hash`` at ``version`` that the index names
    (``raw``, as read: None if it is missing, which is corruption)."""
    if raw is None:
        raise StateCorruption(
            f"fresh value of key hash {key_hash.hex()} at version {version} is missing"
        )
    return decode_entry(raw, "fresh value of key hash", key_hash)


class Pending:
    """The fresh entries stored: key hash -> the newest version holding its value, and
    the key hashes of each version (oldest first), to drop with it."""

    __slots__ = ("_by_version", "_newest")

    def __init__(self) -> None:
        self._newest: dict[bytes, int] = {}
        self._by_version: dict[int, list[bytes]] = {}  # in version order

    @classmethod
    def load(
        cls, txn: ReadTxn, tables: dict[str, str], latest: int | None, hash_size: int
    ) -> Pending:
        """The index of the fresh entries stored (in version order: the newest wins)."""
        pending = cls()
        newest, by_version = pending._newest, pending._by_version
        for key, _raw in txn.scan(tables["fresh"]):
            if len(key) != _U64.size + hash_size:
                raise StateCorruption(f"malformed fresh entry key {key.hex()}")
            version = int(_U64.unpack_from(key)[0])
            if latest is None or version > latest:
                raise StateCorruption(f"fresh entry of version {version}, after the latest")
            key_hash = key[_U64.size :]
            newest[key_hash] = version
            by_version.setdefault(version, []).append(key_hash)
        return pending

    def version_of(self, key_hash: bytes) -> int | None:
        return self._newest.get(key_hash)

    @property
    def first(self) -> int | None:
        """The oldest version with fresh entries stored."""
        return next(iter(self._by_version), None)

    def record(self, version: int, key_hashes: list[bytes], first_kept: int) -> None:
        """``version`` committed: it changed ``key_hashes``, and the fresh entries of the
        versions before ``first_kept`` are gone."""
        by_version, newest = self._by_version, self._newest
        for old in [old for old in by_version if old < first_kept]:
            for key_hash in by_version.pop(old):
                if newest.get(key_hash) == old:
                    del newest[key_hash]
        if key_hashes:
            by_version[version] = key_hashes
            newest.update(zip(key_hashes, repeat(version)))

    def items(self) -> list[tuple[bytes, int]]:
        return list(self._newest.items())

    def __len__(self) -> int:
        return len(self._newest)


def read_merge_marks(txn: ReadTxn, tables: dict[str, str], latest: int | None) -> list[int]:
    """The next version each slice merges from (all 0 before anything was merged); none
    is past the version after ``latest``, or fresh entries not yet merged would be
    dropped."""
    raw = txn.get(tables["meta"], MERGE_MARKS_KEY)
    if raw is None:
        return [0] * MERGE_SPAN
    if len(raw) != MERGE_SPAN * _U64.size:
        raise StateCorruption("malformed merge marks")
    marks = [int(mark) for (mark,) in _U64.iter_unpack(raw)]
    if max(marks) > (-1 if latest is None else latest) + 1:
        raise StateCorruption(f"merge marks past the latest version ({latest})")
    return marks


def encode_merge_marks(marks: list[int]) -> bytes:
    return b"".join(map(_U64.pack, marks))


# Above every key hash of a slice (the first of the next), and the slice's first.
_SLICE_ENDS = [bytes(((part + 1) << SLICE_SHIFT,)) for part in range(MERGE_SPAN - 1)]
_SLICE_ENDS.append(b"\xff" * 65)
_SLICE_STARTS = [bytes((part << SLICE_SHIFT,)) for part in range(MERGE_SPAN)]


def merge(
    txn: WriteTxn,
    tables: dict[str, str],
    version: int,
    changes: list[tuple[bytes, bytes | None]],
    marks: list[int],
    horizon: int,
    native: tuple[FreshEntries, MergeNewest] | None = NATIVE_MERGE,
) -> int:
    """Write ``version``'s fresh entries (``changes``: key hash -> value, sorted), merge
    its slice into ``latest`` up to ``horizon`` and drop the fresh entries every slice
    merged (inside its transaction; ``marks``, the next version each slice merges from,
    is updated in place for the caller to keep once it committed, as the index is in
    :meth:`Pending.record`). Returns the first version whose fresh entries are kept.
    ``native``: the C steps, or None for these Python ones."""
    fresh = tables["fresh"]
    if native is not None:
        entries = native[0](version, changes)
    else:
        prefix = _U64.pack(version)
        entries = [
            (prefix + key_hash, ABSENT if value is None else PRESENT + value)
            for key_hash, value in changes
        ]
    # Above every fresh key: they start with the version.
    txn.put_many(fresh, entries, append=True)
    part = version % MERGE_SPAN
    if horizon >= marks[part]:
        # The newest fresh entry of each key of the slice, over the versions it has
        # not merged up to the horizon: one range of each version's entries, read in
        # order, costs less than a lookup per key.
        low = _SLICE_STARTS[part]
        runs: list[list[tuple[bytes, bytes]]] = []
        for older in range(marks[part], horizon + 1):
            start = _U64.pack(older)
            stop = start + _SLICE_ENDS[part] if part + 1 < MERGE_SPAN else _U64.pack(older + 1)
            runs.append(txn.items_between(fresh, start + low, stop))
        if native is not None:
            puts, deletes, bad = native[1](runs, _U64.size)
            if bad is not None:
                decode_entry(bad[1], "fresh value of key hash", bad[0])  # raises
        else:
            puts, deletes = newest_entries(runs)
        txn.put_many(tables["latest"], puts)
        txn.delete_many(tables["latest"], deletes)
        marks[part] = horizon + 1
    txn.put(tables["meta"], MERGE_MARKS_KEY, encode_merge_marks(marks))
    first_kept = min(marks)
    if first_kept > 0:
        txn.delete_between(fresh, _U64.pack(0), _U64.pack(first_kept))
    return first_kept


def newest_entries(
    runs: list[list[tuple[bytes, bytes]]],
) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """(puts, deletes) of the newest entry of each key hash over ``runs`` (oldest first)."""
    newest: dict[bytes, bytes] = {}
    for run in runs:
        newest.update((key[_U64.size :], raw) for key, raw in run)
    items = sorted(newest.items())
    puts = [(key_hash, raw[1:]) for key_hash, raw in items if raw[:1] == PRESENT]
    deletes = [key_hash for key_hash, raw in items if raw == ABSENT]
    if len(puts) + len(deletes) != len(items):
        for key_hash, raw in items:  # raises at the malformed entry
            decode_entry(raw, "fresh value of key hash", key_hash)
    return puts, deletes


def latest_value(
    txn: ReadTxn, tables: dict[str, str], pending: Pending, key_hash: bytes
) -> bytes | None:
    version = pending.version_of(key_hash)
    if version is None:
        return txn.get(tables["latest"], key_hash)
    return fresh_value(txn.get(tables["fresh"], _U64.pack(version) + key_hash), key_hash, version)


def value_at(
    txn: ReadTxn, tables: dict[str, str], pending: Pending, key_hash: bytes, version: int
) -> bytes | None:
    """The value of the key hashing to ``key_hash`` at ``version`` (retained), or None."""
    newest = pending.version_of(key_hash)
    if newest is None:
        return txn.get(tables["latest"], key_hash)
    if newest <= version:
        raw = txn.get(tables["fresh"], _U64.pack(newest) + key_hash)
        return fresh_value(raw, key_hash, newest)
    # Changed after ``version``: its fresh entry of the newest version up to it, else
    # its merged value (every merged change is older than each retained version).
    fresh, first = tables["fresh"], pending.first
    for older in range(version, (version if first is None else first) - 1, -1):
        raw = txn.get(fresh, _U64.pack(older) + key_hash)
        if raw is not None:
            return decode_entry(raw, "fresh value of key hash", key_hash)
    return txn.get(tables["latest"], key_hash)


def latest_items(
    txn: ReadTxn, tables: dict[str, str], pending: Pending
) -> list[tuple[bytes, bytes]]:
    """(key hash, value) of every key present in the latest version, sorted."""
    values = dict(txn.scan(tables["latest"]))
    for key_hash, _version in pending.items():
        value = latest_value(txn, tables, pending, key_hash)
        if value is None:
            values.pop(key_hash, None)
        else:
            values[key_hash] = value
    return sorted(values.items())


def convert_merged(txn: WriteTxn, tables: dict[str, str], latest: int) -> int:
    """Layout 2 to this one: merge every fresh entry into ``latest`` and empty ``fresh``
    and ``history``, with every slice merged up to ``latest`` (which is then the oldest
    version a read can ask for: what earlier ones had is gone). Returns the entries
    merged."""
    fresh = tables["fresh"]
    run = txn.items_between(fresh, b"", _LEGACY_END)  # in version order: the newest wins
    puts, deletes = newest_entries([run])
    txn.put_many(tables["latest"], puts)
    txn.delete_many(tables["latest"], deletes)
    txn.delete_between(fresh, b"", _LEGACY_END)
    txn.delete_between(tables["history"], b"", _LEGACY_END)
    txn.put(tables["meta"], MERGE_MARKS_KEY, encode_merge_marks([latest + 1] * MERGE_SPAN))
    return len(run)


def convert_current(
    txn: WriteTxn, tables: dict[str, str], key_hash: Callable[[bytes], bytes]
) -> int:
    """Layout 1 to layout 2: move ``current`` (key -> value) into ``latest`` (key hash ->
    value), then empty it; returns the keys moved. Nothing is pending after."""
    current = tables["current"]
    items = sorted((key_hash(key), value) for key, value in txn.scan(current))
    for first, second in pairwise(items):
        if first[0] == second[0]:
            raise StateCorruption("two keys of the state share a key hash")
    txn.put_many(tables["latest"], items)
    txn.delete_between(current, b"", _LEGACY_END)
    txn.delete_between(tables["fresh"], b"", _LEGACY_END)
    return len(items)


def convert_legacy(txn: WriteTxn, tables: dict[str, str], oldest: int) -> int:
    """Move a legacy ``values`` table into ``current`` and ``history`` (what retained
    versions from ``oldest`` on can read), then empty it; returns the keys present.
    That is layout 1: :func:`convert_current` goes on from there."""
    legacy = tables["values"]
    present = 0
    key: bytes | None = None
    run: list[tuple[int, bytes]] = []  # the entries of ``key``, newest first
    for entry_key, raw in txn.scan(legacy):
        length = len(entry_key) - 10
        if length < 1 or _U16.unpack_from(entry_key)[0] != length:
            raise StateCorruption(f"malformed value entry {entry_key.hex()}")
        entry_for = entry_key[2:-8]
        if entry_for != key:
            if key is not None:
                present += _convert_key(txn, tables, key, run, oldest)
            key, run = entry_for, []
        run.append((U64_MAX - _U64.unpack_from(entry_key, 2 + length)[0], raw))
    if key is not None:
        present += _convert_key(txn, tables, key, run, oldest)
    txn.delete_between(legacy, b"\x00", _LEGACY_END)
    return present


def _convert_key(
    txn: WriteTxn, tables: dict[str, str], key: bytes, run: list[tuple[int, bytes]], oldest: int
) -> int:
    newest = decode_history(run[0][1], key)
    if newest is not None:
        txn.put(tables["current"], key, newest)
    history = tables["history"]
    for (newer, _raw), (_older, older_raw) in pairwise(run):
        if newer > oldest:
            decode_history(older_raw, key)  # checked before it is kept
            txn.put(history, history_key(newer, key), older_raw)
    first = run[-1][0]  # before its first entry still stored, the key was absent
    if first > oldest:
        txn.put(history, history_key(first, key), ABSENT)
    return newest is not None
