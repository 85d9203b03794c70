"""A page: four binary levels of the tree (16 slots) with its inner hashes kept.

Positions are numbered as in a heap: 1 is the page's top, ``p`` has children
``2p`` and ``2p + 1``, and positions 16..31 are the slots. An inner position
is EMPTY (no key under it), SINGLE (one leaf under it, lifted: its hash is that
leaf's hash) or MANY (its hash is the node hash of its two children). Only
MANY hashes are stored; the kinds follow from the slot masks. Keeping them
means an update rehashes only the paths above the slots it changed.

Encoding: be16 occupied mask, be16 leaf mask, then per slot in order a leaf's
key hash and value hash, a child's be64 version and hash, or a bucket's count
(one byte), hash and leaves; then the hash of every MANY position in order
1..15. A slot's two mask bits say what it holds: occupied and leaf, a leaf;
occupied alone, a child; leaf alone, a bucket (earlier builds wrote no buckets
and refused that pair). In memory ``occupied`` counts a bucket and ``leaves``
does not: under an inner position, a bucket is two keys or more, as a child is.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from itertools import pairwise

import msgspec

from chaincity.state.tree import BUCKET_MAX, Bucket, Child, Hasher, Leaf, Slot, StateCorruption

PAGE_SLOTS = 16
_FIRST_SLOT = 16
_MASKS = struct.Struct(">HH")
_VERSION = struct.Struct(">Q")


def _range_mask(position: int) -> int:
    level = position.bit_length() - 1
    width = PAGE_SLOTS >> level
    return ((1 << width) - 1) << ((position - (1 << level)) * width)


_RANGE = [0] + [_range_mask(p) for p in range(1, 2 * PAGE_SLOTS)]
_LEVEL = [0] + [p.bit_length() - 1 for p in range(1, 2 * PAGE_SLOTS)]


def _child_hash(
    hasher: Hasher,
    slots: Sequence[Slot],
    inner: Sequence[bytes | None],
    occupied: int,
    leaves: int,
    position: int,
) -> bytes:
    """The hash at ``position`` of a page whose inner hashes below it are up to date."""
    if position >= _FIRST_SLOT:
        slot = slots[position - _FIRST_SLOT]
        if slot is None:
            return hasher.zero
        if type(slot) is Leaf:
            return slot.leaf_hash or hasher.leaf_of(slot)
        return slot.hash
    stored = inner[position]
    if stored is not None:
        return stored
    mask = occupied & _RANGE[position]
    if mask == 0:
        return hasher.zero
    leaf = slots[mask.bit_length() - 1]
    if type(leaf) is not Leaf or mask & (mask - 1):
        raise StateCorruption("page lacks the hash of a position with two keys")
    return leaf.leaf_hash or hasher.leaf_of(leaf)


class Page(msgspec.Struct, gc=False):
    """A page being built holds lists; a committed (cached) page holds tuples.

    Cached pages are many and live long: with tuples of untracked slots and a
    struct kept out of the collector's sight, a large cache costs the garbage
    collector nothing. A page never takes part in a reference cycle.
    """

    slots: Sequence[Slot]
    inner: Sequence[bytes | None]
    occupied: int
    leaves: int
    buckets: int = 0

    @classmethod
    def empty(cls) -> Page:
        return cls([None] * PAGE_SLOTS, [None] * PAGE_SLOTS, 0, 0)

    def copy(self) -> Page:
        """A page to change (committed pages never change)."""
        return Page(list(self.slots), list(self.inner), self.occupied, self.leaves, self.buckets)

    def freeze(self) -> None:
        self.slots = tuple(self.slots)
        self.inner = tuple(self.inner)

    def set_slot(self, index: int, slot: Slot) -> None:
        slots = self.slots
        assert isinstance(slots, list), "a committed page is changed"
        slots[index] = slot
        bit = 1 << index
        self.occupied = self.occupied | bit if slot is not None else self.occupied & ~bit
        self.leaves = self.leaves | bit if type(slot) is Leaf else self.leaves & ~bit
        self.buckets = self.buckets | bit if type(slot) is Bucket else self.buckets & ~bit

    def is_many(self, position: int) -> bool:
        mask = self.occupied & _RANGE[position]
        return mask & (mask - 1) != 0 or (mask != 0 and not self.leaves & mask)

    def few_leaves(self) -> list[Leaf] | None:
        """Every key of the page, sorted, if it holds no child page and BUCKET_MAX keys or
        fewer (it then collapses into its parent's slot); else None."""
        if self.occupied & ~(self.leaves | self.buckets) or self.leaves.bit_count() > BUCKET_MAX:
            return None
        found: list[Leaf] = []
        for slot in self.slots:
            if type(slot) is Leaf:
                found.append(slot)
            elif type(slot) is Bucket:
                found += slot.leaves
        return found if len(found) <= BUCKET_MAX else None

    def hash_at(self, hasher: Hasher, position: int) -> bytes:
        if position >= _FIRST_SLOT:
            slot = self.slots[position - _FIRST_SLOT]
            if slot is None:
                return hasher.zero
            return hasher.leaf_of(slot) if type(slot) is Leaf else slot.hash
        stored = self.inner[position]
        if stored is not None:
            return stored
        mask = self.occupied & _RANGE[position]
        if mask == 0:
            return hasher.zero
        leaf = self.slots[mask.bit_length() - 1]
        if type(leaf) is not Leaf or mask & (mask - 1):
            raise StateCorruption("page lacks the hash of a position with two keys")
        return hasher.leaf_of(leaf)

    def top(self, hasher: Hasher) -> bytes:
        return self.inner[1] or self.hash_at(hasher, 1)

    def rehash(self, hasher: Hasher, dirty_slots: int) -> None:
        """Recompute the inner hashes above the slots in the ``dirty_slots`` mask.

        Written flat (no call per position): it runs for every page an update
        touches, one to three pages per changed key.
        """
        occupied, leaves, slots, inner = self.occupied, self.leaves, self.slots, self.inner
        assert isinstance(inner, list), "a committed page is changed"
        hash_fn, prefix = hasher.hash_fn, hasher.node_prefix
        if not dirty_slots:
            return
        if dirty_slots & (dirty_slots - 1) == 0:  # one slot (most pages): walk straight up
            position = _FIRST_SLOT + dirty_slots.bit_length() - 1
            current = _child_hash(hasher, slots, inner, occupied, leaves, position)
            while position > 1:
                parent = position >> 1
                mask = occupied & _RANGE[parent]
                if mask & (mask - 1) or (mask and not leaves & mask):
                    sibling = _child_hash(hasher, slots, inner, occupied, leaves, position ^ 1)
                    if position & 1:
                        current = hash_fn(prefix + sibling + current)
                    else:
                        current = hash_fn(prefix + current + sibling)
                    inner[parent] = current
                else:
                    inner[parent] = None
                    current = _child_hash(hasher, slots, inner, occupied, leaves, parent)
                position = parent
            return
        dirty = dirty_slots
        for first in (8, 4, 2, 1):  # the first position of each level, bottom up
            above = 0
            j = 0
            while dirty:
                if dirty & 3:
                    position = first + j
                    mask = occupied & _RANGE[position]
                    if mask & (mask - 1) or (mask and not leaves & mask):
                        left = _child_hash(hasher, slots, inner, occupied, leaves, 2 * position)
                        right = _child_hash(
                            hasher, slots, inner, occupied, leaves, 2 * position + 1
                        )
                        inner[position] = hash_fn(prefix + left + right)
                    else:
                        inner[position] = None
                    above |= 1 << j
                dirty >>= 2
                j += 1
            dirty = above

    def proof_step(self, hasher: Hasher, index: int, siblings: list[bytes]) -> Slot:
        """Append the siblings on the way to slot ``index`` (top down); return where the path
        stops: a lifted Leaf (maybe another key's), None (empty) or a Child to descend into."""
        position = 1
        while position < _FIRST_SLOT:
            mask = self.occupied & _RANGE[position]
            if mask == 0:
                return None
            if not self.is_many(position):
                return self.slots[mask.bit_length() - 1]
            child = 2 * position + ((index >> (3 - _LEVEL[position])) & 1)
            siblings.append(self.hash_at(hasher, child ^ 1))
            position = child
        return self.slots[index]

    def encode(self) -> bytes:
        parts = [_MASKS.pack(self.occupied & ~self.buckets, self.leaves | self.buckets)]
        parts += [slot.raw for slot in self.slots if slot is not None]
        # rehash() leaves a hash exactly at the MANY positions, which decode() expects.
        parts += [h for h in self.inner if h is not None]
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes, hash_size: int) -> Page:
        if len(data) < _MASKS.size:
            raise StateCorruption("state page too short")
        occupied, leaves = _MASKS.unpack_from(data)
        buckets = leaves & ~occupied
        occupied |= buckets
        leaves &= ~buckets
        slots: list[Slot] = [None] * PAGE_SLOTS
        offset = _MASKS.size
        leaf_size, child_size = 2 * hash_size, 8 + hash_size
        for index in range(PAGE_SLOTS):
            bit = 1 << index
            if not occupied & bit:
                continue
            if leaves & bit:
                end = offset + leaf_size
                slots[index] = Leaf(data[offset:end])
            elif buckets & bit:
                end, slots[index] = _decode_bucket(data, offset, hash_size)
            else:
                end = offset + child_size
                version = int.from_bytes(data[offset : offset + 8], "big")
                slots[index] = Child(version, data[offset + 8 : end], data[offset:end])
            offset = end
        inner: list[bytes | None] = [None] * PAGE_SLOTS
        for position in range(1, _FIRST_SLOT):
            mask = occupied & _RANGE[position]
            if mask & (mask - 1) or (mask and not leaves & mask):
                inner[position] = data[offset : offset + hash_size]
                offset += hash_size
        # Any truncation or excess shows here: every read above advanced by a full size.
        if offset != len(data):
            raise StateCorruption("state page has the wrong length")
        return cls(tuple(slots), tuple(inner), occupied, leaves, buckets)


def _decode_bucket(data: bytes, offset: int, hash_size: int) -> tuple[int, Bucket]:
    """The bucket at ``offset`` and where it ends; its count, size and order are checked."""
    count = data[offset] if offset < len(data) else 0
    leaf_size = 2 * hash_size
    start = offset + 1 + hash_size
    end = start + count * leaf_size
    if not 2 <= count <= BUCKET_MAX or end > len(data):
        raise StateCorruption("state page has a malformed bucket")
    leaves = tuple(Leaf(data[at : at + leaf_size]) for at in range(start, end, leaf_size))
    if any(a.key_hash >= b.key_hash for a, b in pairwise(leaves)):
        raise StateCorruption("state page has a malformed bucket")
    return end, Bucket(data[offset + 1 : start], leaves, data[offset:end])
