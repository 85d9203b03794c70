"""Pruning by generation: a version's tree pages are deleted together, as one range.

A version's write transaction appends the pages it writes (a *generation*: they
share the node-key prefix be64(version)). Deleting a replaced page on its own
would dirty a random LMDB page for every page replaced; instead each generation
counts its pages still in the latest tree (``gens``: written, then one less for
every page of it a later version replaces, which the tree writer reports). A
generation whose count reaches zero at version ``r`` is reached by no tree from
``r`` on, and is deleted as one key range once ``r`` is the oldest retained
version or older (``dying``, ordered by ``r``).

Most generations die on their own: a busy key's pages are soon replaced. What
lingers are pages under keys that rarely change. A generation whose live pages
have fallen to half of what it wrote or fewer (``due``) is *refreshed* once the
versions after it have written ``copy_after_pct`` percent of the latest tree's
page count: a version copies its live pages forward into itself, with their
parents (writer.py), which replaces them and lets the generation die. Age is
measured in pages written, not in versions, because that is what wears a
generation down, whatever the size of the batches. Copying only sparse
generations bounds both costs: a page is copied only out of a generation that
is at least half garbage, and every generation kept holds at least as many
live pages as dead ones, so the tree pages on disk stay within about twice
the latest tree, plus ``copy_after_pct`` percent of it (and the pages of the
retained window).

Counts are exact because the writer reports every page that leaves the tree,
exactly once: pages never change, and a page a version stops reaching is never
reached again. Everything here happens in the version's own write transaction.
Pages written before a store adopted generations (``generations_from``) have no
count; they are deleted one by one, from the stale lists, as before.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Sequence
from operator import itemgetter

from chaincity.state.kv import ReadTxn, WriteTxn
from chaincity.state.tree import StateCorruption

COPY_AFTER_PCT_DEFAULT = 500  # of the latest tree's pages, written before copying
CLEAN_PER_VERSION = 2  # generations refreshed by one version, at most
DEAD_PER_COMMIT = 64  # generations deleted by one commit, at most (the rest wait)

_U64 = struct.Struct(">Q")
_COUNTS = struct.Struct(">QQQ")  # live pages, pages written, pages written before it
_TOTALS = struct.Struct(">QQ")  # pages written, pages live (counted generations)
_GENERATION = itemgetter(slice(0, _U64.size))  # a node key's generation (its be64 prefix)
_PATH = itemgetter(slice(_U64.size, None))  # a node key's path
_FIRST_KEY = b"generations_from"
_TOTALS_KEY = b"generation_totals"


def count_generations(replaced: Sequence[bytes]) -> dict[bytes, int]:
    """How many of the ``replaced`` node keys each generation (be64 prefix) has."""
    return dict(Counter(map(_GENERATION, replaced)))


def paths_of(key_lists: Sequence[Sequence[bytes]]) -> list[bytes]:
    """The paths of the node keys in ``key_lists``, sorted, each once."""
    return sorted({_PATH(key) for keys in key_lists for key in keys})


def _find_native() -> (
    tuple[
        Callable[[Sequence[bytes]], dict[bytes, int]],
        Callable[[Sequence[Sequence[bytes]]], list[bytes]],
    ]
    | None
):
    """The same two steps in C (_treecore.c), where built; the ones above are the reference."""
    try:
        from chaincity.state._treecore import count_prefixes, sorted_suffixes
    except ImportError:
        return None
    size = _U64.size
    return (
        lambda replaced: count_prefixes(replaced, size),
        lambda key_lists: sorted_suffixes(key_lists, size),
    )


_NATIVE = _find_native()
_count_generations = count_generations if _NATIVE is None else _NATIVE[0]
_paths_of = paths_of if _NATIVE is None else _NATIVE[1]


class Generations:
    """The page counts of one state's generations, kept in its tables."""

    def __init__(
        self, tables: dict[str, str], first: int, copy_after_pct: int, *, stored: bool
    ) -> None:
        """``first``: the first version counted; ``stored``: whether it is recorded."""
        if copy_after_pct < 1:
            raise ValueError("copy_after_pct must be at least 1")
        self._tables = tables
        self._first = first
        self._first_key = _U64.pack(first)
        self._copy_after_pct = copy_after_pct
        self._stored = stored

    @classmethod
    def open(
        cls, txn: ReadTxn, tables: dict[str, str], latest: int | None, copy_after_pct: int
    ) -> Generations:
        raw = txn.get(tables["meta"], _FIRST_KEY)
        if raw is None:  # a new store, or one written before generations: count from now
            first = 0 if latest is None else latest + 1
            return cls(tables, first, copy_after_pct, stored=False)
        if len(raw) != _U64.size:
            raise StateCorruption("state meta 'generations_from' is malformed")
        return cls(tables, _U64.unpack(raw)[0], copy_after_pct, stored=True)

    @property
    def first(self) -> int:
        return self._first

    @property
    def copy_after_pct(self) -> int:
        return self._copy_after_pct

    def totals(self, txn: ReadTxn) -> tuple[int, int]:
        """(pages written, pages live) over the counted generations."""
        raw = txn.get(self._tables["meta"], _TOTALS_KEY)
        if raw is None:
            return 0, 0
        if len(raw) != _TOTALS.size:
            raise StateCorruption("state meta 'generation_totals' is malformed")
        written, live = _TOTALS.unpack(raw)
        return int(written), int(live)

    def _counts(self, txn: ReadTxn, key: bytes) -> tuple[int, int, int]:
        raw = txn.get(self._tables["gens"], key)
        if raw is None or len(raw) != _COUNTS.size:
            raise StateCorruption(f"page count of version {_U64.unpack(key)[0]} is missing")
        live, written, before = _COUNTS.unpack(raw)
        return int(live), int(written), int(before)

    def to_refresh(self, txn: ReadTxn, version: int) -> tuple[list[int], list[bytes]]:
        """The generations ``version`` copies forward, and the paths of their pages
        (sorted, each once; dead pages among them are skipped by the writer)."""
        written_total, live_total = self.totals(txn)
        worn = written_total - live_total * self._copy_after_pct // 100  # written by then
        chosen: list[tuple[bytes, int]] = []
        for key, _raw in txn.scan(self._tables["due"]):
            if len(key) != _U64.size:
                raise StateCorruption(f"malformed generation key {key.hex()}")
            _live, written, before = self._counts(txn, key)
            # In version order, so in order of pages written before: the first one too
            # young ends the search.
            if before + written > worn or len(chosen) >= CLEAN_PER_VERSION:
                break
            chosen.append((key, written))
        nodes = self._tables["nodes"]
        key_lists: list[list[bytes]] = []
        for prefix, written in chosen:
            # A counted generation is deleted only whole: its range holds every page it
            # wrote, so the first `written` keys from its start are exactly its pages.
            keys = txn.keys_from(nodes, prefix, written)
            # (A generation counted with no pages is as malformed: none is ever recorded.)
            if not keys or len(keys) != written or keys[0][:8] != prefix or keys[-1][:8] != prefix:
                version = _U64.unpack(prefix)[0]
                raise StateCorruption(f"version {version} lacks pages it counts as written")
            key_lists.append(keys)
        return [_U64.unpack(prefix)[0] for prefix, _written in chosen], _paths_of(key_lists)

    def uncounted(self, replaced: Sequence[bytes]) -> list[bytes]:
        """The replaced node keys of pages written before generations were counted."""
        if not self._first:
            return []
        first = self._first_key
        return [key for key in replaced if key[:8] < first]

    def record(self, txn: WriteTxn, version: int, written: int, replaced: Sequence[bytes]) -> None:
        """Count ``version``'s pages and the pages it replaced (inside its transaction)."""
        tables = self._tables
        gens, due = tables["gens"], tables["due"]
        if not self._stored:
            txn.put(tables["meta"], _FIRST_KEY, self._first_key)
        written_total, live_total = self.totals(txn)
        if written and version >= self._first:
            txn.put(gens, _U64.pack(version), _COUNTS.pack(written, written, written_total))
            written_total += written
            live_total += written
        first = self._first_key
        for prefix, count in _count_generations(replaced).items():
            if prefix < first:
                continue
            live, total, before = self._counts(txn, prefix)
            if count > live:
                raise StateCorruption(
                    f"version {_U64.unpack(prefix)[0]} loses more pages than it has"
                )
            live -= count
            live_total -= count
            if live == 0:
                txn.delete(gens, prefix)
                txn.delete(due, prefix)
                txn.put(tables["dying"], _U64.pack(version) + prefix, b"")
                continue
            txn.put(gens, prefix, _COUNTS.pack(live, total, before))
            if 2 * live <= total < 2 * (live + count):  # it just fell to half live
                txn.put(due, prefix, b"")
        txn.put(tables["meta"], _TOTALS_KEY, _TOTALS.pack(written_total, live_total))

    def delete_dead(self, txn: WriteTxn, oldest: int) -> int:
        """Delete the generations no retained version reaches; returns how many pages."""
        tables = self._tables
        done: list[bytes] = []
        deleted = 0
        for key, _raw in txn.scan(tables["dying"]):
            if len(key) != 2 * _U64.size:
                raise StateCorruption(f"malformed generation key {key.hex()}")
            if _U64.unpack_from(key)[0] > oldest or len(done) >= DEAD_PER_COMMIT:
                break
            generation = _U64.unpack_from(key, 8)[0]
            start = _U64.pack(generation)
            deleted += txn.delete_between(tables["nodes"], start, _U64.pack(generation + 1))
            done.append(key)
        txn.delete_many(tables["dying"], done)
        return deleted

    def committed(self) -> None:
        """The first write transaction committed: ``generations_from`` is recorded."""
        self._stored = True

    def counts(self, txn: ReadTxn) -> dict[int, tuple[int, int]]:
        """Every counted generation's (live pages, pages written): for checks and tests."""
        counts: dict[int, tuple[int, int]] = {}
        for key, raw in txn.scan(self._tables["gens"]):
            if len(key) != _U64.size or len(raw) != _COUNTS.size:
                raise StateCorruption(f"malformed page count {key.hex()}")
            live, written, _before = _COUNTS.unpack(raw)
            counts[_U64.unpack(key)[0]] = (int(live), int(written))
        return counts
