"""Versioned authenticated state on a KVStore.

Version ``v`` is the state after height ``v`` committed. Each version keeps its
root; reads and proofs work against any retained version (the latest
``window`` ones). Writing a version is two steps so that it can join the
ledger's one write transaction: :meth:`AuthenticatedState.prepare` computes
the new pages and root from a read snapshot (nothing is written), then
:meth:`AuthenticatedState.write_update` puts them inside the caller's
transaction, and :meth:`AuthenticatedState.after_commit` runs once it has
committed.

Tables (``<prefix>`` is chain-scoped):

- ``nodes``: be64(version) + nibble path -> page (see tree.py)
- ``latest``, ``fresh``: the values merged so far and the changes of the
  versions since, by version (see values.py); ``history``, ``current`` and
  ``values``: the layouts before, converted
- ``stale``: be64(version) -> node keys of replaced pages written before
  generations were counted (and value entries of the layout before)
- ``roots``: be64(version) -> root hash + be64(version of the root page), kept forever
- ``meta``: ``latest`` and ``oldest`` retained version, ``generations_from``,
  the values' layout and merge marks
- ``gens``, ``due``, ``dying``: page counts of generations (see generations.py),
  by which replaced tree pages are deleted a whole version at a time
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from itertools import islice, pairwise, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, cast

import msgspec

from chaincity.crypto import CryptoSuite
from chaincity.state.generations import COPY_AFTER_PCT_DEFAULT, Generations
from chaincity.state.kv import BackgroundWriter, KVStore, ReadTxn, StorageError, WriteTxn
from chaincity.state.page import Page
from chaincity.state.tree import (
    PAGE_DEPTH_MAX,
    Bucket,
    Child,
    Hasher,
    StateCorruption,
    StateProof,
    bucket_step,
    nibble,
)
from chaincity.state.values import (
    LAYOUT,
    LAYOUT_CURRENT,
    LAYOUT_KEY,
    LAYOUT_MERGED,
    NATIVE_MERGE,
    Pending,
    convert_current,
    convert_legacy,
    convert_merged,
    latest_items,
    merge,
    read_merge_marks,
    value_at,
)
from chaincity.state.writer import (
    NATIVE_APPLY,
    NATIVE_COLLECT,
    NATIVE_DIGESTS,
    NativeApply,
    TreeChanges,
    TreeWriter,
    native_digest_name,
)

if TYPE_CHECKING:
    from chaincity.state.overlay import Overlay

KEY_SIZE_MAX = 256  # namespace included
VALUE_SIZE_MAX = 64 * 1024
CHANGES_MAX = 1_000_000  # per version
WINDOW_DEFAULT = 128
PAGE_CACHE_DEFAULT = 1_000_000  # pages (Python writer): the tree of 10^7 keys (0.073 a key)

_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")


class StateError(Exception):
    """A request the state cannot serve (the caller's fault, the state is fine)."""


class StateVersionError(StateError):
    """A version that is not retained (pruned, or not yet committed)."""


class StateConflict(StateError):
    """An overlay or update built on a version that is no longer the latest."""


def check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or not 0 < len(key) <= KEY_SIZE_MAX:
        raise StateError(f"state key must be 1..{KEY_SIZE_MAX} bytes")


def check_value(value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) > VALUE_SIZE_MAX:
        raise StateError(f"state value must be bytes of at most {VALUE_SIZE_MAX}")


def table_names(prefix: str) -> dict[str, str]:
    tables = ["nodes", "latest", "fresh", "history", "current", "values", "stale"]
    tables += ["roots", "meta", "gens", "due", "dying"]
    return {t: f"{prefix}state.{t}" for t in tables}


def _node_key(version: int, path: bytes) -> bytes:
    return _U64.pack(version) + path


class _StaleList(msgspec.Struct, array_like=True, frozen=True):
    nodes: list[bytes]
    values: list[bytes]


@dataclass(slots=True)
class StateUpdate:
    """A version ready to be written: computed from ``base``, not yet stored."""

    base: int | None
    version: int
    root: bytes
    root_page_version: int
    pages: list[tuple[bytes, bytes]] = field(default_factory=list)  # (node key, encoded page)
    decoded_pages: list[Page] = field(default_factory=list)  # the Python writer's, in order
    # key hash -> value (None deletes), sorted by key hash
    values: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    stale: _StaleList = field(default_factory=lambda: _StaleList([], []))
    changed_keys: int = 0
    refreshed: list[int] = field(default_factory=list)  # generations it copies forward
    # What the next version copies forward, chosen in this one's write transaction.
    next_refresh: tuple[list[int], list[bytes]] | None = None
    # The values' merge marks after this version, and its first fresh version kept.
    merge_marks: list[int] = field(default_factory=list)
    fresh_from: int = 0
    _written: dict[bytes, bytes | None] | None = field(default=None, repr=False, compare=False)

    def written(self) -> dict[bytes, bytes | None]:
        """``values`` by key hash (None: deleted), built on first use: what reads of this
        version find before the store, while it commits behind."""
        if self._written is None:
            self._written = dict(self.values)
        return self._written


class AuthenticatedState:
    """The state of one chain; a single writer (the node) uses it from one thread."""

    def __init__(
        self,
        store: KVStore,
        suite: CryptoSuite,
        *,
        prefix: str = "",
        window: int = WINDOW_DEFAULT,
        page_cache_max: int = PAGE_CACHE_DEFAULT,
        # int only because Ledger passes its options as **dict[str, int]: 1 means True.
        native: bool | int | None = None,
        copy_after_pct: int = COPY_AFTER_PCT_DEFAULT,
    ) -> None:
        """``native``: update the tree with the C routine (True), the Python writer
        (False), or the C routine where it is built (None). ``page_cache_max``: the
        Python writer's cache of decoded pages (the C routine reads pages from the
        store). ``copy_after_pct``: how much writing, in percent of the latest tree's
        pages, before a sparse generation's pages are copied forward (generations.py)."""
        if window < 1:
            raise ValueError("window must be at least 1 version")
        if native and NATIVE_APPLY is None:
            raise ValueError("the native tree routine (chaincity.state._treecore) is not built")
        self._native = NATIVE_APPLY if native is None or native else None
        # Checked once: OpenSSL's digest of this name is the suite's hash.
        self._digest_name = native_digest_name(suite) if self._native is not None else None
        # With that name, prepare hashes its keys and values through OpenSSL as well,
        # and collects the changes in C.
        self._digests = NATIVE_DIGESTS if self._digest_name is not None else None
        self._native_collect = NATIVE_COLLECT if self._digest_name is not None else None
        # Merging the values' slices: the C steps with the C routine (values.py).
        self._native_merge = NATIVE_MERGE if self._native is not None else None
        self._store = store
        self._suite = suite
        self._hasher = Hasher(suite)
        self._tables = table_names(prefix)
        self._window = window
        # Decoded pages, for the Python writer. The C routine reads encoded pages
        # straight from the store's snapshot (LMDB's map): keeping them in a dict as
        # well cost more, in its upkeep, than the reads it saved (docs/storage.md).
        self._cache: dict[bytes, Page] = {}
        self._cache_max = page_cache_max
        self._caching = self._native is None
        store.open_tables(list(self._tables.values()))
        with store.read() as txn:
            self._latest = self._read_meta(txn, b"latest")
            self._oldest = self._read_meta(txn, b"oldest")
            self._generations = Generations.open(txn, self._tables, self._latest, copy_after_pct)
            layout = txn.get(self._tables["meta"], LAYOUT_KEY)
        if self._latest is not None and layout != LAYOUT:
            self._convert_values(layout)
        with store.read() as txn:
            self._pending = Pending.load(txn, self._tables, self._latest, self._hasher.size)
            self._merge_marks = read_merge_marks(txn, self._tables, self._latest)
        # One read snapshot of the latest version serves every read until the next
        # version commits: opening a transaction per key cost more than the lookup.
        self._snapshot: tuple[int | None, ExitStack, ReadTxn] | None = None
        # A version written and committing behind (commit_behind), not yet durable.
        self._writer: BackgroundWriter | None = None
        self._inflight: StateUpdate | None = None
        # (version, what it copies forward) when the version before chose it.
        self._next_refresh: tuple[int, tuple[list[int], list[bytes]]] | None = None

    def _convert_values(self, layout: bytes | None) -> None:
        if layout not in (None, LAYOUT_CURRENT, LAYOUT_MERGED):
            raise StateCorruption(f"the state's values use an unknown layout {layout!r}")
        latest = self._latest
        assert latest is not None  # (a store with no version has nothing to convert)
        try:
            with self._store.write() as txn:
                if layout is None:
                    convert_legacy(txn, self._tables, self._oldest or 0)
                if layout != LAYOUT_MERGED:
                    convert_current(txn, self._tables, self._hasher.key)
                # What versions before the latest had is not kept in this layout.
                convert_merged(txn, self._tables, latest)
                txn.put(self._tables["meta"], b"oldest", _U64.pack(latest))
                txn.put(self._tables["meta"], LAYOUT_KEY, LAYOUT)
            self._oldest = latest
        except StorageError as exc:
            raise StateError(
                f"the state's values are stored as earlier builds did and must be converted, "
                f"which needs the store open for writing (start the node once): {exc}"
            ) from None

    # -- the read snapshot ----------------------------------------------------

    def _reader(self) -> ReadTxn:
        """A snapshot holding every retained version, opened on first use."""
        snapshot = self._snapshot
        if snapshot is not None and snapshot[0] == self._latest:
            return snapshot[2]
        # A snapshot of an earlier version is closed, never read: after_commit
        # closes it first, and this check holds whatever path moved the version.
        self._release_snapshot()
        # A snapshot opened now could hold the version committing behind, which is
        # not the latest until settled: settle it first. (commit_behind opens the
        # snapshot before it starts a commit, so this is only after a failed read.)
        self.settle()
        stack = ExitStack()
        txn = stack.enter_context(self._store.read())
        self._snapshot = (self._latest, stack, txn)
        return txn

    def _release_snapshot(self) -> None:
        snapshot, self._snapshot = self._snapshot, None
        if snapshot is not None:
            snapshot[1].close()

    @property
    def snapshot_open(self) -> bool:
        """Whether a read snapshot is held (for tests and diagnostics)."""
        return self._snapshot is not None

    def close(self) -> None:
        """Wait for a version committing behind, release the read snapshot and the
        writer's thread; call before closing the store (reads reopen a snapshot)."""
        try:
            self.settle()
        finally:
            self._release_snapshot()
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.close()

    # -- versions -------------------------------------------------------------

    @property
    def suite(self) -> CryptoSuite:
        return self._suite

    @property
    def latest_version(self) -> int | None:
        return self._latest

    @property
    def tip_version(self) -> int | None:
        """The version the next update builds on: the one committing behind, if any,
        else the latest."""
        return self._latest if self._inflight is None else self._inflight.version

    @property
    def oldest_version(self) -> int | None:
        return self._oldest

    @property
    def generations(self) -> Generations:
        return self._generations

    def root(self, version: int | None = None) -> bytes:
        """The root of ``version`` (default latest); roots of pruned versions stay readable."""
        if version is None and self._latest is None:
            return self._hasher.zero
        at = self._resolve(version, retained=False)
        try:
            return self._root_ref(self._reader(), at)[0]
        except BaseException:
            self._release_snapshot()  # whatever failed, the next read starts afresh
            raise

    def _resolve(self, version: int | None, *, retained: bool = True) -> int:
        if version is None:
            version = self._latest
        if version is None or self._latest is None or not 0 <= version <= self._latest:
            raise StateVersionError(f"version {version} is not committed")
        if retained and self._oldest is not None and version < self._oldest:
            raise StateVersionError(f"version {version} is pruned (oldest is {self._oldest})")
        return version

    def _read_meta(self, txn: ReadTxn, name: bytes) -> int | None:
        raw = txn.get(self._tables["meta"], name)
        return None if raw is None else int(_U64.unpack(raw)[0])

    def _root_ref(self, txn: ReadTxn, version: int) -> tuple[bytes, int]:
        raw = txn.get(self._tables["roots"], _U64.pack(version))
        size = self._hasher.size
        if raw is None or len(raw) != size + 8:
            raise StateCorruption(f"root of version {version} is missing or malformed")
        return raw[:size], int(_U64.unpack_from(raw, size)[0])

    # -- reads ----------------------------------------------------------------

    def get(self, key: bytes, version: int | None = None) -> bytes | None:
        """The value of ``key`` at ``version`` (default latest), or None if absent."""
        check_key(key)
        latest = self._latest
        if version is None or version == latest:  # nearly every read: the latest version
            if latest is None:
                return None
            at = latest
        else:
            at = self._resolve(version)
        try:
            return self._get(self._reader(), key, at)
        except BaseException:
            self._release_snapshot()
            raise

    def read_base(self, key: bytes, base: int | None) -> bytes | None:
        """The value of ``key`` at ``base``, as an overlay on it reads: ``base`` may be the
        version committing behind (what it wrote, else the latest version's value)."""
        inflight = self._inflight
        if inflight is None or base != inflight.version:
            return None if base is None else self.get(key, base)
        check_key(key)
        key_hash = self._hasher.key(key)
        written = inflight.written()
        if key_hash in written:
            return written[key_hash]
        latest = self._latest
        if latest is None:  # committing behind is the first version
            return None
        try:
            # (Should opening the snapshot settle the version behind, the value at
            # ``latest`` is still its value at ``base``: the version did not change it.)
            return self._get(self._reader(), key, latest, key_hash)
        except BaseException:
            self._release_snapshot()
            raise

    def _get(
        self, txn: ReadTxn, key: bytes, version: int, key_hash: bytes | None = None
    ) -> bytes | None:
        assert self._latest is not None  # a resolved version is committed
        if key_hash is None:
            key_hash = self._hasher.key(key)
        return value_at(txn, self._tables, self._pending, key_hash, version)

    def latest_items(self, txn: ReadTxn) -> list[tuple[bytes, bytes]]:
        """(key hash, value) of every key in the latest version, sorted: for checks."""
        return latest_items(txn, self._tables, self._pending)

    def prove(self, key: bytes, version: int | None = None) -> tuple[bytes | None, StateProof]:
        """The value of ``key`` at ``version`` and a proof of it against that version's root."""
        check_key(key)
        at = self._resolve(version)
        key_hash = self._hasher.key(key)
        try:
            txn = self._reader()
            value = self._get(txn, key, at, key_hash)
            page_version = self._root_ref(txn, at)[1]
            proof, found = self._prove(txn, key_hash, page_version)
        except BaseException:
            self._release_snapshot()
            raise
        if found != (value is not None):
            raise StateCorruption(f"tree and values disagree on key {key.hex()} at {at}")
        return value, proof

    def _prove(
        self, txn: ReadTxn, key_hash: bytes, root_page_version: int
    ) -> tuple[StateProof, bool]:
        siblings: list[bytes] = []
        page = self._page(txn, root_page_version, b"")
        path = b""
        for depth in range(PAGE_DEPTH_MAX):
            index = nibble(key_hash, depth)
            end = page.proof_step(self._hasher, index, siblings)
            if type(end) is Child:
                path += bytes((index,))
                page = self._page(txn, end.version, path)
                continue
            if type(end) is Bucket:
                end = bucket_step(self._hasher, end, depth, key_hash, siblings)
            if end is None:
                return StateProof(tuple(siblings)), False
            if end.key_hash == key_hash:
                return StateProof(tuple(siblings)), True
            return StateProof(tuple(siblings), end.key_hash, end.value_hash), False
        raise StateCorruption("state tree deeper than the key hash")

    def _page(self, txn: ReadTxn, version: int, path: bytes) -> Page:
        return self.page_at(txn, _node_key(version, path))

    @property
    def native(self) -> bool:
        """Whether tree updates run in the C routine."""
        return self._native is not None

    def page_at(self, txn: ReadTxn, node_key: bytes) -> Page:
        cached = self._cache.get(node_key)
        if cached is not None:
            return cached
        page = Page.decode(self._read_page(txn, node_key), self._hasher.size)
        self._remember(node_key, page)
        return page

    def _read_page(self, txn: ReadTxn, node_key: bytes) -> bytes:
        raw = txn.get(self._tables["nodes"], node_key)
        if raw is None:
            raise StateCorruption(f"state page {node_key.hex()} is missing")
        return raw

    def _remember(self, node_key: bytes, page: Page) -> None:
        # Pages never change once written, so a cached page is never stale; only
        # committed pages are cached, so a discarded update leaves no trace.
        if not self._caching:
            return
        self._make_room(1)
        self._cache[node_key] = page

    def _make_room(self, count: int) -> None:
        """Evict the oldest entries (a quarter at least) if ``count`` more would not fit."""
        cache = self._cache
        excess = len(cache) + count - self._cache_max
        if excess > 0:
            drop = min(len(cache), max(excess, self._cache_max // 4 + 1))
            for old in list(islice(cache, drop)):
                del cache[old]

    # -- writes ---------------------------------------------------------------

    def overlay(self) -> Overlay:
        """A copy-on-write view over the tip: the latest version, or the one committing
        behind (so the next block executes while the one before commits)."""
        from chaincity.state.overlay import Overlay

        return Overlay(self, self.tip_version)

    def compute_root(self, view: Overlay) -> bytes:
        return self.prepare(view).root

    def prepare(self, view: Overlay) -> StateUpdate:
        """The update that commits ``view`` as the next version (cached on the view)."""
        if view.base_version != self.tip_version:
            raise StateConflict(f"view built on {view.base_version}, the tip is {self.tip_version}")
        cached = view.prepared()
        if cached is not None:
            return cached
        update = self.prepare_changes(view.base_version, view.changes())
        view.set_prepared(update)
        return update

    def prepare_changes(
        self,
        base: int | None,
        changes: Iterable[tuple[bytes, bytes | None]],
    ) -> StateUpdate:
        """The next version from net ``changes`` (key -> value, None deletes) over ``base``,
        the latest version or the one committing behind."""
        if base != self.tip_version:
            raise StateConflict(f"update built on version {base}, latest is {self.tip_version}")
        version = 0 if base is None else base + 1
        # Built on the version committing behind, this reads what that version wrote
        # from it (none of it is in the store yet), and the rest from the store.
        inflight = self._inflight
        behind = inflight if inflight is not None and inflight.version == base else None
        try:
            txn = self._reader()
            update, tree_changes = self._collect(base, version, changes)
            self._update_tree(txn, update, tree_changes, behind)
        except BaseException:
            self._release_snapshot()
            raise
        return update

    def _collect(
        self, base: int | None, version: int, changes: Iterable[tuple[bytes, bytes | None]]
    ) -> tuple[StateUpdate, list[tuple[bytes, bytes | None]]]:
        update = StateUpdate(base, version, self._hasher.zero, version)
        items = list(islice(changes, CHANGES_MAX + 1))
        if len(items) > CHANGES_MAX:
            raise StateError(f"more than {CHANGES_MAX} changes in one version")
        # No value is looked up: a put of the value a key has rewrites its leaf (the
        # same hash, the same root), and reads of retained versions need no record of
        # what a change replaced (values.py).
        native = self._native_collect
        if native is not None:  # the same steps as below, in one call
            update.values, tree_changes = native(
                items,
                self._digest_name,
                KEY_SIZE_MAX,
                VALUE_SIZE_MAX,
                check_key,
                check_value,
                StateError,
            )
            update.changed_keys = len(tree_changes)
            return update, tree_changes
        for key, value in items:
            check_key(key)
            if value is not None:
                check_value(value)
        key_hashes = cast(list[bytes], self._hash_all([key for key, _value in items]))
        update.values = new_values = sorted(
            zip(key_hashes, [value for _key, value in items], strict=True), key=itemgetter(0)
        )
        value_hashes = self._hash_all([value for _key_hash, value in new_values])
        tree_changes = [
            (key_hash, value_hash)
            for (key_hash, _value), value_hash in zip(new_values, value_hashes, strict=True)
        ]
        for first, second in pairwise(tree_changes):
            if first[0] == second[0]:
                raise StateError("a key changes twice in one version")
        update.changed_keys = len(tree_changes)
        return update, tree_changes

    def _hash_all(self, items: list[bytes] | list[bytes | None]) -> list[bytes | None]:
        """The suite's hash of each item (None for None): through OpenSSL in one call
        where the C routine was built against it."""
        if self._digests is not None and self._digest_name is not None:
            return self._digests(self._digest_name, items)
        hash_fn, ctor = self._hasher.hash_fn, self._hasher.hash_ctor
        if ctor is not None:  # called inline: a frame per hash costs as much
            return [None if item is None else ctor(item).digest() for item in items]
        return [None if item is None else hash_fn(item) for item in items]

    def _to_refresh(
        self, txn: ReadTxn, update: StateUpdate, behind: StateUpdate | None
    ) -> tuple[list[int], list[bytes]]:
        """What ``update`` copies forward: chosen in its base's write transaction, where
        there was one (a version committing behind has not yet committed its counts)."""
        chosen = None
        if behind is not None:
            chosen = behind.next_refresh
        elif self._next_refresh is not None and self._next_refresh[0] == update.version:
            chosen = self._next_refresh[1]
        return self._generations.to_refresh(txn, update.version) if chosen is None else chosen

    def _update_tree(
        self, txn: ReadTxn, update: StateUpdate, changes: TreeChanges, behind: StateUpdate | None
    ) -> None:
        root: Child | None = None
        refreshed, refreshes = self._to_refresh(txn, update, behind)
        update.refreshed = refreshed
        if update.base is not None:
            if behind is not None:
                root_hash, root_page_version = behind.root, behind.root_page_version
            else:
                root_hash, root_page_version = self._root_ref(txn, update.base)
            update.root, update.root_page_version = root_hash, root_page_version
            root = Child(root_page_version, root_hash)
        if root is not None and not changes and not refreshes:
            return  # (the first version writes a root page even when it is empty)
        if self._native is not None:
            self._update_tree_native(
                self._native, txn, update, changes, root, refreshed, refreshes, behind
            )
            return
        read_page: Callable[[bytes], Page] = partial(self.page_at, txn)
        if behind is not None:  # its pages are not in the store yet
            keys = map(itemgetter(0), behind.pages)
            unstored = dict(zip(keys, behind.decoded_pages, strict=True)).get
            committed = read_page

            def read_page(node_key: bytes) -> Page:
                page = unstored(node_key)
                return committed(node_key) if page is None else page

        writer = TreeWriter(
            self._hasher,
            read_page,
            update.version,
            update.pages,
            update.decoded_pages,
            update.stale.nodes,
            refreshed,
        )
        root_hash, written = writer.update_root(root, changes, refreshes)
        update.root = root_hash
        if written:
            update.root_page_version = update.version

    def _update_tree_native(
        self,
        native: NativeApply,
        txn: ReadTxn,
        update: StateUpdate,
        changes: TreeChanges,
        root: Child | None,
        refreshed: list[int],
        refreshes: list[bytes],
        behind: StateUpdate | None,
    ) -> None:
        hasher = self._hasher
        get_page = txn.getter(self._tables["nodes"])  # None for a missing page: corruption
        # The pages of the version committing behind are not in the store yet: the C
        # routine looks in them first, with no Python frame per page.
        written = None if behind is None else dict(behind.pages)
        root_hash, pages, stale = native(
            changes,
            None if root is None else root.version,
            update.version,
            get_page,
            hasher.hash_fn,
            hasher.leaf_prefix,
            hasher.node_prefix,
            hasher.size,
            hasher.hash_ctor,
            refreshed,
            refreshes,
            written,
            self._digest_name,
        )
        update.root, update.pages = root_hash, pages
        if pages:  # the root page is written whenever anything is
            update.root_page_version = update.version
        update.stale.nodes.extend(stale)

    def write_update(self, txn: WriteTxn, update: StateUpdate) -> None:
        """Put ``update`` (and prune what fell out of the window) inside ``txn``."""
        self.settle()
        if update.base != self._latest:
            raise StateConflict(f"update built on version {update.base}, latest is {self._latest}")
        self._write(txn, update)

    def _write(self, txn: WriteTxn, update: StateUpdate) -> None:
        tables = self._tables
        # A version's node keys sort after every key stored (they start with the version):
        # appended in order, they fill LMDB pages densely with no search or split.
        txn.put_many(tables["nodes"], sorted(update.pages), append=True)
        # What the changed keys now hold is appended (the fresh keys start with the
        # version), and one slice of the changes is merged into the latest values up
        # to the horizon: nothing a retained version might not have seen (values.py).
        update.merge_marks = marks = list(self._merge_marks)
        horizon = update.version - self._window
        update.fresh_from = merge(
            txn, tables, update.version, update.values, marks, horizon, self._native_merge
        )
        generations = self._generations
        generations.record(txn, update.version, len(update.pages), update.stale.nodes)
        stale = _StaleList(generations.uncounted(update.stale.nodes), [])
        if stale.nodes:
            txn.put(tables["stale"], _U64.pack(update.version), msgspec.msgpack.encode(stale))
        ref = update.root + _U64.pack(update.root_page_version)
        txn.put(tables["roots"], _U64.pack(update.version), ref)
        txn.put(tables["meta"], b"latest", _U64.pack(update.version))
        txn.put(tables["meta"], LAYOUT_KEY, LAYOUT)
        oldest = max(self._oldest or 0, update.version - self._window + 1)
        self._prune(txn, oldest)
        generations.delete_dead(txn, oldest)
        txn.put(tables["meta"], b"oldest", _U64.pack(oldest))
        # Chosen here, the next version's refresh can be prepared before this commits.
        update.next_refresh = generations.to_refresh(txn, update.version + 1)

    def _prune(self, txn: WriteTxn, oldest: int) -> None:
        """Drop what only versions before ``oldest`` could reach."""
        tables = self._tables
        done: list[bytes] = []
        for stale_key, raw in txn.scan(tables["stale"]):
            if _U64.unpack(stale_key)[0] > oldest or len(done) >= 64:
                break
            try:
                stale = msgspec.msgpack.decode(raw, type=_StaleList)
            except (msgspec.DecodeError, msgspec.ValidationError):
                raise StateCorruption(f"stale list {stale_key.hex()} does not decode") from None
            # In key order, neighbouring deletions hit the LMDB pages just touched.
            txn.delete_many(tables["nodes"], sorted(stale.nodes))
            txn.delete_many(tables["values"], sorted(stale.values))  # entries of the layout before
            done.append(stale_key)
        for stale_key in done:
            txn.delete(tables["stale"], stale_key)

    def after_commit(self, update: StateUpdate) -> None:
        """Record that ``update``'s transaction committed."""
        self._release_snapshot()  # it shows the version before: never read it again
        self._latest = update.version
        self._oldest = max(self._oldest or 0, update.version - self._window + 1)
        self._generations.committed()
        self._pending.record(
            update.version, [key_hash for key_hash, _value in update.values], update.fresh_from
        )
        self._merge_marks = update.merge_marks
        if update.next_refresh is not None:
            self._next_refresh = (update.version + 1, update.next_refresh)
        if not self._caching:
            return
        cache = self._cache
        # The replaced pages serve only reads of older versions: dropping them keeps
        # the cache to about the latest tree, which is what updates read.
        # A C loop: about 3 pages a key go, each a Python iteration otherwise.
        deque(map(cache.pop, update.stale.nodes, repeat(None)), maxlen=0)
        first = max(0, len(update.pages) - self._cache_max)  # the root is written last
        self._make_room(len(update.pages) - first)
        for (node_key, _raw), page in zip(
            update.pages[first:], update.decoded_pages[first:], strict=True
        ):
            cache[node_key] = page

    def commit(self, update: StateUpdate) -> None:
        """Write ``update`` in a transaction of its own (when no ledger is involved)."""
        self.settle()
        with self._store.write() as txn:
            self.write_update(txn, update)
        self.after_commit(update)

    def commit_behind(self, update: StateUpdate) -> None:
        """Write ``update`` and start its commit, which finishes while the caller goes on:
        the next version can be prepared on it meanwhile (``prepare_changes`` with
        ``base=tip_version``). It is durable, and becomes the latest version, only once
        :meth:`settle` returns (the next ``commit_behind`` or ``commit`` settles first).
        Reads and proofs see the latest version, never one committing behind."""
        self.settle()
        if update.base != self._latest:
            raise StateConflict(f"update built on version {update.base}, latest is {self._latest}")
        self._reader()  # the snapshot of the latest version, opened before the next commits
        if self._writer is None:
            self._writer = self._store.background_writer()
        with self._writer.transaction() as txn:
            self._write(txn, update)
        self._inflight = update

    def settle(self) -> None:
        """Wait until the version committing behind, if any, is durable: it is then the
        latest. If its commit failed this raises StorageError; the version is dropped,
        and what was prepared on it is refused as a conflict."""
        update = self._inflight
        if update is None:
            return
        self._inflight = None
        assert self._writer is not None  # commit_behind made it
        self._writer.wait()
        self.after_commit(update)

    def load_page(self, txn: ReadTxn, version: int, path: bytes) -> Page:
        return self._page(txn, version, path)

    def root_ref(self, txn: ReadTxn, version: int) -> tuple[bytes, int]:
        return self._root_ref(txn, version)

    @property
    def hasher(self) -> Hasher:
        return self._hasher

    @property
    def store(self) -> KVStore:
        return self._store

    @property
    def tables(self) -> dict[str, str]:
        return dict(self._tables)
