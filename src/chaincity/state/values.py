"""The values of a state's keys: the latest version's in one table, older ones as history.

- ``current``: key -> value, for every key present in the latest version. An
  update overwrites a changed key's entry where it stands and deletes the
  entries of the keys it deletes: one LMDB page dirtied per key changed.
- ``history``: be64(v) + be16(len) + key -> 0x01 + value, or 0x00: what the key
  was before version ``v`` changed it (present with that value, or absent). A
  version's history entries share the prefix be64(v): they are appended in key
  order, and dropped as one key range once version ``v - 1`` is no longer
  retained, with no list of them to keep.

The value of a key at a retained version ``at`` is the history entry of the
first version after ``at`` that changed it or, if none did, its current entry.
A read of the latest version (nearly every read) is one lookup; a read of an
older version, at most one more per version since.

Stores written before this layout kept one table, ``values``: be16(len) + key +
be64(~v) -> 0x01 + value, or 0x00, an entry per version that changed a key,
each deleted on its own once out of the window (so two random LMDB pages were
dirtied per key changed: the new entry's, and later the old one's). They are
converted when opened read-write (:func:`convert_legacy`), in one transaction.
"""

from __future__ import annotations

import struct
from itertools import pairwise

from chaincity.state.kv import ReadTxn, WriteTxn
from chaincity.state.tree import StateCorruption

PRESENT = b"\x01"
ABSENT = b"\x00"
LAYOUT_KEY = b"value_layout"  # in the meta table: present once a store uses this layout
LAYOUT = b"\x01"
U64_MAX = 2**64 - 1

_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")
_LEGACY_END = b"\xff" * 300  # above every legacy entry key (at most 2 + 256 + 8 bytes)


def history_key(version: int, key: bytes) -> bytes:
    return _U64.pack(version) + _U16.pack(len(key)) + key


def history_end(version: int) -> bytes:
    """Above every history key of versions up to ``version``."""
    return _U64.pack(version + 1)


def decode_history(raw: bytes, key: bytes) -> bytes | None:
    if raw[:1] == PRESENT:
        return raw[1:]
    if raw != ABSENT:
        raise StateCorruption(f"malformed history entry for key {key.hex()}")
    return None


def value_at(
    txn: ReadTxn, tables: dict[str, str], key: bytes, version: int, latest: int
) -> bytes | None:
    """``key``'s value at ``version`` (retained, at most ``latest``), or None if absent."""
    if version < latest:
        history = tables["history"]
        suffix = _U16.pack(len(key)) + key
        for later in range(version + 1, latest + 1):
            raw = txn.get(history, _U64.pack(later) + suffix)
            if raw is not None:
                return decode_history(raw, key)
    return txn.get(tables["current"], key)


def convert_legacy(txn: WriteTxn, tables: dict[str, str], oldest: int) -> int:
    """Move a legacy ``values`` table into ``current`` and ``history`` (what retained
    versions from ``oldest`` on can read), then empty it; returns the keys present."""
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
