"""The tree update of one version: the C routine where it is built, else Python.

Both apply a sorted batch of (key hash, value hash or None) to the pages of a
tree and give the same result byte for byte: the new root, the new pages in
the order written (children before their parent, the root last) and the node
keys of the pages they replace. :class:`TreeWriter` is the reference;
``chaincity.state._treecore.apply`` (``_treecore.c``) does the same work in C,
hashing through OpenSSL where it was built against it and the suite names its
hash (:func:`native_digest_name`), else through the suite's C hash constructor
or its callable.

An update may also *refresh* a few old versions: given the paths of the pages
they wrote (sorted), it copies into the new version every one of those pages
that the new tree still reaches, with the parents above it (a copy has a new
node key, so its parent's reference changes; no hash does). The walk follows
the refresh paths together with the changes, in one traversal, and descends
only into child pages written at the oldest refreshed version or later: a page
is never newer than its parent, so nothing under an older child can be one of
them. Afterwards the new tree reaches no page of those versions (pages never
move: a page's node key holds its path), which is what lets the store delete
each of them as one key range.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from chaincity.crypto.suite import CryptoSuite, HashState
from chaincity.state.page import Page
from chaincity.state.tree import (
    BUCKET_MAX,
    PAGE_DEPTH_MAX,
    Bucket,
    Child,
    Hasher,
    Leaf,
    Slot,
    StateCorruption,
    bucket_of,
)

_U64 = struct.Struct(">Q")
_NIBBLES = [bytes((i,)) for i in range(16)]
_KEY_HASH = attrgetter("key_hash")

TreeChanges = list[tuple[bytes, bytes | None]]
NativeApply = Callable[
    [
        TreeChanges,
        int | None,
        int,
        Callable[[bytes], bytes | None],
        Callable[[bytes], bytes],
        bytes,
        bytes,
        int,
        Callable[[bytes], HashState] | None,
        list[int],
        list[bytes],
        dict[bytes, bytes] | None,
        str | None,
    ],
    tuple[bytes, list[tuple[bytes, bytes]], list[bytes]],
]


def _find_native() -> NativeApply | None:
    """The C tree routine, or None where it was not built (no compiler at install)."""
    try:
        from chaincity.state._treecore import apply
    except ImportError:
        return None
    return apply


NATIVE_APPLY = _find_native()


Digests = Callable[[str, Sequence[bytes | None]], list[bytes | None]]


def _find_native_digest() -> tuple[Callable[[str, bytes], bytes | None], Digests] | None:
    try:
        from chaincity.state._treecore import digest, digests
    except ImportError:
        return None
    return digest, digests


_NATIVE_DIGEST = _find_native_digest()


def _find_native_collect() -> Callable[..., Any] | None:
    try:
        from chaincity.state._treecore import collect
    except ImportError:
        return None
    return collect


# store.py's AuthenticatedState._collect in one call (see _treecore.c), where built.
NATIVE_COLLECT = _find_native_collect()
# OpenSSL's digests of many byte strings (None for None) in one call: with a name
# native_digest_name gave, the suite's hash of each.
NATIVE_DIGESTS: Digests | None = None if _NATIVE_DIGEST is None else _NATIVE_DIGEST[1]
_DIGEST_PROBE = b"chaincity native digest probe"


def native_digest_name(suite: CryptoSuite) -> str | None:
    """The name to hand the C routine as ``digest_name``: the suite's ``hash_name`` if the
    routine was built against OpenSSL and OpenSSL's digest of that name agrees with the
    suite's hash (a digest that disagreed would fork the roots); else None."""
    name = suite.hash_name
    if _NATIVE_DIGEST is None or name is None:
        return None
    if _NATIVE_DIGEST[0](name, _DIGEST_PROBE) != suite.hash(_DIGEST_PROBE):
        return None
    return name


class TreeWriter:
    """Applies sorted key-hash changes to pages, collecting the new pages of a version.

    The reference for the C routine, and the fallback where it is not built.
    """

    __slots__ = (
        "_decoded",
        "_hasher",
        "_page_at",
        "_pages",
        "_prefix",
        "_refresh",
        "_refresh_min",
        "_stale",
        "_version",
    )

    def __init__(
        self,
        hasher: Hasher,
        page_at: Callable[[bytes], Page],
        version: int,
        pages: list[tuple[bytes, bytes]],
        decoded: list[Page],
        stale: list[bytes],
        refresh_versions: Sequence[int] = (),
    ) -> None:
        """Pages written go to ``pages`` (node key, encoding) and ``decoded``; the node
        keys of the pages they replace to ``stale``. ``page_at`` reads a committed page.
        ``refresh_versions``: the old versions whose reachable pages are copied forward."""
        self._hasher = hasher
        self._page_at = page_at
        self._version = version
        self._prefix = _U64.pack(version)
        self._pages = pages
        self._decoded = decoded
        self._stale = stale
        self._refresh = frozenset(refresh_versions)
        # Without a refresh, every page is "older than the oldest refreshed": none is looked at.
        self._refresh_min = min(refresh_versions, default=2**64)

    def update_root(
        self,
        root: Child | None,
        changes: Sequence[tuple[bytes, bytes | None]],
        refreshes: Sequence[bytes] = (),
    ) -> tuple[bytes, bool]:
        """Apply ``changes`` and ``refreshes`` to the tree whose root page ``root`` names
        (None: an empty tree); returns the root hash and whether a root page was written.
        The root page is written whenever anything changed, and for an empty tree (it
        never collapses)."""
        if root is None:
            page, order = Page.empty(), -1
        else:
            node_key = root.raw[:8]
            page = self._page_at(node_key).copy()
            order = self._order(root.version)
            if changes or order == 0:
                self._stale.append(node_key)
        dirty = self.apply(page, 0, b"", changes, refreshes if order >= 0 else ())
        if root is not None and not changes and order != 0:
            if not dirty:
                return page.top(self._hasher), False
            self._stale.append(root.raw[:8])
        page.rehash(self._hasher, dirty)
        return self.write_page(page, b""), True

    def _order(self, version: int) -> int:
        """-1: older than every refreshed version; 0: refreshed; 1: newer than one."""
        if version < self._refresh_min:
            return -1
        return 0 if version in self._refresh else 1

    def apply(
        self,
        page: Page,
        depth: int,
        path: bytes,
        changes: Sequence[tuple[bytes, bytes | None]],
        refreshes: Sequence[bytes] = (),
    ) -> int:
        """Apply ``changes`` and ``refreshes`` (sorted, all under ``path``) to ``page`` in
        place; returns the mask of the slots changed (their inner hashes are left for the
        caller to redo)."""
        if depth >= PAGE_DEPTH_MAX:
            raise StateCorruption("two keys share a whole key hash")
        if refreshes and len(refreshes[0]) == depth:  # this page itself: the caller's part
            refreshes = refreshes[1:]
        if refreshes:
            return self._apply_both(page, depth, path, changes, refreshes)
        byte_at, shift = depth >> 1, 0 if depth & 1 else 4
        count = len(changes)
        if count == 1:  # the common case below the top pages of a batch
            index = (changes[0][0][byte_at] >> shift) & 0x0F
            slot = self._slot(page.slots[index], depth + 1, path + _NIBBLES[index], changes)
            page.set_slot(index, slot)
            return 1 << index
        dirty = 0
        start = 0
        while start < count:
            index = (changes[start][0][byte_at] >> shift) & 0x0F
            end = start + 1
            while end < count and (changes[end][0][byte_at] >> shift) & 0x0F == index:
                end += 1
            slot = self._slot(
                page.slots[index], depth + 1, path + _NIBBLES[index], changes[start:end]
            )
            page.set_slot(index, slot)
            dirty |= 1 << index
            start = end
        return dirty

    def _apply_both(
        self,
        page: Page,
        depth: int,
        path: bytes,
        changes: Sequence[tuple[bytes, bytes | None]],
        refreshes: Sequence[bytes],
    ) -> int:
        """:meth:`apply` with refreshes: slot by slot, changes and refreshes merged."""
        byte_at, shift = depth >> 1, 0 if depth & 1 else 4
        count, refresh_count = len(changes), len(refreshes)
        dirty = 0
        start = refresh_start = 0
        while start < count or refresh_start < refresh_count:
            change_index = (changes[start][0][byte_at] >> shift) & 0x0F if start < count else 16
            refresh_index = refreshes[refresh_start][depth] if refresh_start < refresh_count else 16
            index = min(change_index, refresh_index)
            end = start
            while end < count and (changes[end][0][byte_at] >> shift) & 0x0F == index:
                end += 1
            refresh_end = refresh_start
            while refresh_end < refresh_count and refreshes[refresh_end][depth] == index:
                refresh_end += 1
            old = page.slots[index]
            below = refreshes[refresh_start:refresh_end]
            if end > start:
                slot = self._slot(old, depth + 1, path + _NIBBLES[index], changes[start:end], below)
            else:
                slot = self._refresh_slot(old, depth + 1, path + _NIBBLES[index], below)
            if end > start or slot is not old:
                page.set_slot(index, slot)
                dirty |= 1 << index
            start, refresh_start = end, refresh_end
        return dirty

    def _refresh_slot(
        self, slot: Slot, depth: int, path: bytes, refreshes: Sequence[bytes]
    ) -> Slot:
        """The slot after refreshing under it (the same object if nothing is copied)."""
        if type(slot) is not Child or slot.version < self._refresh_min:
            return slot  # a leaf, or a page older than the refreshed versions: none below
        if slot.version not in self._refresh and len(refreshes) == 1 and len(refreshes[0]) == depth:
            # A newer page, on whose path only a refreshed page it replaced was written:
            # nothing below it to copy, so it is not read.
            return slot
        node_key = slot.raw[:8] + path
        page = self._page_at(node_key).copy()
        if slot.version in self._refresh:  # reached: copied whatever is below
            self._stale.append(node_key)
            return self._finish(page, self.apply(page, depth, path, (), refreshes), path)
        dirty = self.apply(page, depth, path, (), refreshes)
        if not dirty:
            return slot
        self._stale.append(node_key)
        return self._finish(page, dirty, path)

    def _slot(
        self,
        slot: Slot,
        depth: int,
        path: bytes,
        changes: Sequence[tuple[bytes, bytes | None]],
        refreshes: Sequence[bytes] = (),
    ) -> Slot:
        if type(slot) is Child:
            node_key = slot.raw[:8] + path  # be64(version) + path
            page = self._page_at(node_key).copy()
            self._stale.append(node_key)
            if slot.version < self._refresh_min:
                refreshes = ()
            return self._finish(page, self.apply(page, depth, path, changes, refreshes), path)
        if len(changes) == 1 and type(slot) is not Bucket:  # the common case at the bottom
            key_hash, value_hash = changes[0]
            if slot is None or slot.key_hash == key_hash:
                return None if value_hash is None else Leaf(key_hash + value_hash)
            if value_hash is None:
                return slot
        leaves = [Leaf(k + v) for k, v in changes if v is not None]
        if slot is not None:
            changed = {k for k, _ in changes}
            kept = (slot,) if type(slot) is Leaf else slot.leaves
            leaves += [leaf for leaf in kept if leaf.key_hash not in changed]
            leaves.sort(key=_KEY_HASH)
        if len(leaves) <= 1:
            return leaves[0] if leaves else None
        if len(leaves) <= BUCKET_MAX:
            return bucket_of(self._hasher, leaves, depth - 1)
        page = Page.empty()
        pairs = [(leaf.key_hash, leaf.value_hash) for leaf in leaves]
        return self._finish(page, self.apply(page, depth, path, pairs), path)

    def _finish(self, page: Page, dirty: int, path: bytes) -> Slot:
        """The slot of the page at ``path`` after changes: nothing, its one leaf or its
        bucket when it holds BUCKET_MAX keys or fewer (and no child page), else the page."""
        few = page.few_leaves()
        if few is not None:
            if len(few) <= 1:
                return few[0] if few else None
            return bucket_of(self._hasher, few, len(path) - 1)
        page.rehash(self._hasher, dirty)
        top = self.write_page(page, path)
        return Child(self._version, top, self._prefix + top)

    def write_page(self, page: Page, path: bytes) -> bytes:
        """Record ``page`` (complete: it is frozen here) as written at ``path``."""
        self._pages.append((self._prefix + path, page.encode()))
        self._decoded.append(page)
        page.freeze()
        return page.top(self._hasher)
