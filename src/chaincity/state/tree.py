"""The authenticated tree: hashing rules, pages, proofs and their verification.

The tree is a binary sparse Merkle tree over ``hash(key)`` (256 bits), made
compact by two rules that make the root a function of the key set alone:

- an empty subtree hashes to ``ZERO`` (all zero bytes, no hashing);
- a subtree holding exactly one key hashes to that key's leaf hash (the leaf
  is lifted to the top of the subtree it is alone in);
- any other subtree hashes to ``H(STATE_NODE, left || right)``.

A leaf hashes to ``H(STATE_LEAF, key_hash || value_hash)``. So the depth of a
key is the length of the shortest prefix no other key shares: about log2(N).

Storage groups four binary levels into a *page* of 16 slots (the nibble of the
key hash at the page's depth picks the slot), in the manner of Diem's
Jellyfish Merkle Tree. A slot is empty, a leaf (the only key under it), a
bucket (two to ``BUCKET_MAX`` keys, kept in the page itself) or a child page
(more keys). Pages are written once and never changed: a new version writes
new pages along the updated paths, so old versions stay readable until pruned.
How keys are stored changes no hash: a bucket hashes as the subtree of its keys.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from typing import Annotated, final

import msgspec
from msgspec import Meta

from chaincity.codec import CodecError, Tag, decode
from chaincity.crypto import CryptoSuite
from chaincity.crypto.suite import HashState
from chaincity.types.primitives import HashBytes

KEY_BITS_MAX = 256
PAGE_SLOTS = 16
# A slot keeps up to this many keys itself: at 10^6 keys nearly every subtree below
# the fifth page level holds 4 keys or fewer, so it needs no page of its own.
BUCKET_MAX = 4
PAGE_DEPTH_MAX = KEY_BITS_MAX // 4
PROOF_SIZE_MAX = 16 * 1024
_CTOR_PROBE = b"chaincity state hash probe"


class StateCorruption(Exception):
    """Stored state does not decode or does not hash to what refers to it."""


@final
class Leaf(msgspec.Struct, gc=False):
    """The only key under a slot: its key hash and value hash (``raw``, as in a page).

    Pages and their slots are many and long-lived in the page cache; slots hold
    only bytes, so they are kept out of the garbage collector's sight.
    """

    raw: bytes  # key hash + value hash
    leaf_hash: bytes = b""  # computed when first needed

    @classmethod
    def of(cls, key_hash: bytes, value_hash: bytes) -> Leaf:
        return cls(key_hash + value_hash)

    @property
    def key_hash(self) -> bytes:
        return self.raw[: len(self.raw) >> 1]

    @property
    def value_hash(self) -> bytes:
        return self.raw[len(self.raw) >> 1 :]


@final
class Child(msgspec.Struct, gc=False):
    """A reference to a child page: the version that wrote it, its hash, bytes in a page."""

    version: int
    hash: bytes
    raw: bytes = b""

    def __post_init__(self) -> None:
        if not self.raw:
            self.raw = self.version.to_bytes(8, "big") + self.hash


@final
class Bucket(msgspec.Struct, gc=False):
    """Two to BUCKET_MAX keys under a slot, kept in the page: their subtree's hash, their
    leaves (sorted by key hash) and the bytes in a page (count, hash, leaves)."""

    hash: bytes
    leaves: tuple[Leaf, ...]
    raw: bytes = b""

    def __post_init__(self) -> None:
        if not self.raw:
            raws = [leaf.raw for leaf in self.leaves]
            self.raw = b"".join([bytes((len(raws),)), self.hash, *raws])


Slot = Leaf | Child | Bucket | None


class Hasher:
    """The suite's tagged hashes for leaves and nodes, with the tag prefixes built once."""

    __slots__ = ("hash_ctor", "hash_fn", "leaf_prefix", "node_prefix", "size", "zero")

    def __init__(self, suite: CryptoSuite) -> None:
        self.hash_fn: Callable[[bytes], bytes] = suite.hash
        ctor = suite.hash_constructor
        # A constructor that disagrees with the suite's hash would fork the roots:
        # checked once here, and ignored if it does.
        if ctor is not None and ctor(_CTOR_PROBE).digest() != suite.hash(_CTOR_PROBE):
            ctor = None
        self.hash_ctor: Callable[[bytes], HashState] | None = ctor
        self.leaf_prefix = bytes((len(Tag.STATE_LEAF),)) + Tag.STATE_LEAF
        self.node_prefix = bytes((len(Tag.STATE_NODE),)) + Tag.STATE_NODE
        self.size = suite.hash_size
        self.zero = bytes(self.size)

    def key(self, key: bytes) -> bytes:
        return self.hash_fn(key)

    def value(self, value: bytes) -> bytes:
        return self.hash_fn(value)

    def leaf(self, key_hash: bytes, value_hash: bytes) -> bytes:
        return self.hash_fn(self.leaf_prefix + key_hash + value_hash)

    def node(self, left: bytes, right: bytes) -> bytes:
        return self.hash_fn(self.node_prefix + left + right)

    def leaf_of(self, leaf: Leaf) -> bytes:
        if not leaf.leaf_hash:
            leaf.leaf_hash = self.leaf(leaf.key_hash, leaf.value_hash)
        return leaf.leaf_hash


def nibble(key_hash: bytes, depth: int) -> int:
    """The 4 bits of ``key_hash`` that pick a slot in a page at ``depth`` (in pages)."""
    byte = key_hash[depth >> 1]
    return (byte >> 4) if depth & 1 == 0 else (byte & 0x0F)


def bit(key_hash: bytes, index: int) -> int:
    return (key_hash[index >> 3] >> (7 - (index & 7))) & 1


def bucket_of(hasher: Hasher, leaves: Sequence[Leaf], depth: int) -> Bucket:
    """The bucket of ``leaves`` (2..BUCKET_MAX, sorted) in a slot of a page at ``depth``."""
    pairs = [(leaf.key_hash, leaf.value_hash) for leaf in leaves]
    return Bucket(_subtree_root(hasher, pairs, 0, len(pairs), 4 * (depth + 1)), tuple(leaves))


def bucket_step(
    hasher: Hasher, bucket: Bucket, depth: int, key_hash: bytes, siblings: list[bytes]
) -> Leaf | None:
    """Append the siblings on the way to ``key_hash`` inside ``bucket`` (in a slot of a
    page at ``depth``); return where the path stops: a lone leaf (maybe another key's)
    or None (an empty subtree)."""
    pairs = [(leaf.key_hash, leaf.value_hash) for leaf in bucket.leaves]
    lo, hi, at = 0, len(pairs), 4 * (depth + 1)
    while hi - lo > 1:
        if at >= 8 * hasher.size:
            raise StateCorruption("two keys share a whole key hash")
        mid = bisect.bisect_left(pairs, (_boundary(pairs[lo][0], at),), lo, hi)
        if bit(key_hash, at):
            siblings.append(_subtree_root(hasher, pairs, lo, mid, at + 1))
            lo = mid
        else:
            siblings.append(_subtree_root(hasher, pairs, mid, hi, at + 1))
            hi = mid
        at += 1
    return bucket.leaves[lo] if hi > lo else None


# -- hashing a page ----------------------------------------------------------

_EMPTY, _SINGLE, _MANY = 0, 1, 2


def page_hash(hasher: Hasher, slots: Sequence[Slot]) -> bytes:
    """A page's top hash computed from its slots alone (checks stored inner hashes)."""
    occupied = leaves = 0
    for index, slot in enumerate(slots):
        if slot is not None:
            occupied |= 1 << index
            if type(slot) is Leaf:
                leaves |= 1 << index
    return _range_hash(hasher, slots, occupied, leaves, 0, PAGE_SLOTS)[0]


def _range_hash(
    hasher: Hasher, slots: Sequence[Slot], occupied: int, leaves: int, lo: int, width: int
) -> tuple[bytes, int]:
    mask = (occupied >> lo) & ((1 << width) - 1)
    if mask == 0:
        return hasher.zero, _EMPTY
    if mask & (mask - 1) == 0:
        index = lo + mask.bit_length() - 1
        slot = slots[index]
        if leaves >> index & 1:
            return hasher.leaf_of(slot), _SINGLE  # type: ignore[arg-type]
        if width == 1:
            return slot.hash, _MANY  # type: ignore[union-attr]
    half = width >> 1
    left = _range_hash(hasher, slots, occupied, leaves, lo, half)[0]
    right = _range_hash(hasher, slots, occupied, leaves, lo + half, half)[0]
    # Both halves empty or one lone leaf was handled above, so this range holds two
    # keys or more.
    return hasher.node(left, right), _MANY


# -- proofs --------------------------------------------------------------------


class StateProof(msgspec.Struct, array_like=True, frozen=True):
    """Siblings from the root down to where the key's path ends.

    The path ends at the key's own leaf (presence), at an empty subtree
    (absence, ``leaf_key_hash`` empty), or at the leaf of the one other key
    that shares the path so far (absence, that key's hashes given).
    """

    siblings: Annotated[tuple[HashBytes, ...], Meta(max_length=KEY_BITS_MAX)]
    leaf_key_hash: HashBytes = b""
    leaf_value_hash: HashBytes = b""


def encode_proof(proof: StateProof) -> bytes:
    return msgspec.msgpack.encode(proof)


def decode_proof(data: bytes) -> StateProof:
    """Raises CodecError for anything that is not a canonical proof."""
    return decode(data, StateProof, size_max=PROOF_SIZE_MAX)


def verify_state_proof(
    suite: CryptoSuite, root: bytes, key: bytes, value: bytes | None, proof: StateProof
) -> bool:
    """Whether ``proof`` shows that ``key`` holds ``value`` (None: is absent) under ``root``.

    Needs no database; never raises on malformed input.
    """
    try:
        return _verify(Hasher(suite), root, key, value, proof)
    except (TypeError, ValueError, IndexError, AttributeError, CodecError):
        return False


def _verify(
    hasher: Hasher, root: bytes, key: bytes, value: bytes | None, proof: StateProof
) -> bool:
    size = hasher.size
    siblings = proof.siblings
    if len(root) != size or len(siblings) > KEY_BITS_MAX:
        return False
    if any(len(s) != size for s in siblings):
        return False
    key_hash = hasher.key(bytes(key))
    current = _terminal(hasher, key_hash, value, proof)
    if current is None:
        return False
    for depth in range(len(siblings) - 1, -1, -1):
        if bit(key_hash, depth):
            current = hasher.node(siblings[depth], current)
        else:
            current = hasher.node(current, siblings[depth])
    return current == root


def _terminal(
    hasher: Hasher, key_hash: bytes, value: bytes | None, proof: StateProof
) -> bytes | None:
    """The hash where the key's path ends, or None if the proof cannot show the claim."""
    other_key, other_value = proof.leaf_key_hash, proof.leaf_value_hash
    if value is not None:
        if other_key or other_value:
            return None
        return hasher.leaf(key_hash, hasher.value(bytes(value)))
    if not other_key and not other_value:
        return hasher.zero
    if len(other_key) != hasher.size or len(other_value) != hasher.size:
        return None
    if other_key == key_hash:
        return None
    depth = len(proof.siblings)
    if any(bit(other_key, i) != bit(key_hash, i) for i in range(depth)):
        return None
    return hasher.leaf(other_key, other_value)


# -- a reference root over plain items (checks and tests) ---------------------


def compute_root(suite: CryptoSuite, items: dict[bytes, bytes]) -> bytes:
    """The root of a state holding ``items``, computed from scratch in memory."""
    hasher = Hasher(suite)
    leaves = sorted((hasher.key(k), hasher.value(v)) for k, v in items.items())
    return root_of_leaves(hasher, leaves)


def root_of_leaves(hasher: Hasher, leaves: list[tuple[bytes, bytes]]) -> bytes:
    """The root over (key hash, value hash) pairs sorted by key hash."""
    return _subtree_root(hasher, leaves, 0, len(leaves), 0)


def _boundary(key_hash: bytes, depth: int) -> bytes:
    """The least hash sharing ``key_hash``'s first ``depth`` bits, with bit ``depth`` set."""
    bits = len(key_hash) * 8
    prefix = int.from_bytes(key_hash, "big") >> (bits - depth - 1)
    return ((prefix | 1) << (bits - depth - 1)).to_bytes(len(key_hash), "big")


def _subtree_root(
    hasher: Hasher, leaves: list[tuple[bytes, bytes]], lo: int, hi: int, depth: int
) -> bytes:
    if hi == lo:
        return hasher.zero
    if hi - lo == 1:
        return hasher.leaf(*leaves[lo])
    mid = bisect.bisect_left(leaves, (_boundary(leaves[lo][0], depth),), lo, hi)
    left = _subtree_root(hasher, leaves, lo, mid, depth + 1)
    right = _subtree_root(hasher, leaves, mid, hi, depth + 1)
    return hasher.node(left, right)
