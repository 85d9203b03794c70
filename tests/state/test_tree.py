"""The tree's hashing rules, proofs and page encoding, without storage."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from chaincity.codec import CodecError
from chaincity.crypto import get_suite
from chaincity.state import AuthenticatedState, LmdbConfig, LmdbStore
from chaincity.state.page import Page
from chaincity.state.tree import (
    Bucket,
    Child,
    Hasher,
    Leaf,
    Slot,
    StateCorruption,
    StateProof,
    bit,
    bucket_of,
    compute_root,
    decode_proof,
    encode_proof,
    page_hash,
    verify_state_proof,
)

SUITE = get_suite("ed25519-sha256")
H = Hasher(SUITE)


def test_empty_root_is_zero() -> None:
    assert compute_root(SUITE, {}) == bytes(32)


def test_single_key_root_is_its_leaf() -> None:
    leaf = H.leaf(H.key(b"k"), H.value(b"v"))
    assert compute_root(SUITE, {b"k": b"v"}) == leaf


def test_root_depends_on_every_key_and_value() -> None:
    base = {b"a": b"1", b"b": b"2", b"c": b"3"}
    root = compute_root(SUITE, base)
    assert compute_root(SUITE, {**base, b"c": b"4"}) != root
    assert compute_root(SUITE, {**base, b"d": b""}) != root
    assert compute_root(SUITE, {b"a": b"1", b"b": b"2"}) != root


def test_two_keys_split_at_first_differing_bit() -> None:
    ka, kb = H.key(b"a"), H.key(b"b")
    la, lb = H.leaf(ka, H.value(b"1")), H.leaf(kb, H.value(b"2"))
    depth = next(i for i in range(256) if bit(ka, i) != bit(kb, i))
    top = H.node(lb, la) if bit(ka, depth) else H.node(la, lb)
    for i in range(depth - 1, -1, -1):
        top = H.node(H.zero, top) if bit(ka, i) else H.node(top, H.zero)
    assert compute_root(SUITE, {b"a": b"1", b"b": b"2"}) == top


def _page(slots: list[Slot]) -> Page:
    page = Page.empty()
    for index, slot in enumerate(slots):
        page.set_slot(index, slot)
    page.rehash(H, 0xFFFF)
    return page


def _mixed_pages() -> list[list[Slot]]:
    kh = [H.key(bytes([i])) for i in range(16)]
    return [
        [None] * 16,
        [Leaf.of(kh[0], kh[1])] + [None] * 15,
        [None] * 7 + [Leaf.of(kh[2], kh[3]), Leaf.of(kh[4], kh[5])] + [None] * 7,
        [Child(3, kh[6])] + [None] * 15,
        [Leaf.of(kh[i], kh[15 - i]) if i % 3 else Child(i, kh[i]) for i in range(16)],
        [_bucket(kh[:2])] + [None] * 15,
        [None] * 14 + [_bucket(kh[2:6]), Leaf.of(kh[7], kh[8])],
        [_bucket(kh[i - 1 : i + 2]) if i % 2 else Leaf.of(kh[i], kh[i]) for i in range(16)],
    ]


def _bucket(key_hashes: list[bytes]) -> Bucket:
    return bucket_of(H, [Leaf.of(k, H.zero) for k in sorted(key_hashes)], 0)


def test_page_inner_hashes_match_hashing_from_scratch() -> None:
    for slots in _mixed_pages():
        assert _page(slots).top(H) == page_hash(H, slots)


def test_page_rehash_of_one_slot_matches_full_rehash() -> None:
    for slots in _mixed_pages():
        page = _page(slots)
        for index in (0, 5, 15):
            page.set_slot(index, Leaf.of(H.key(b"n%d" % index), H.zero))
            page.rehash(H, 1 << index)
            assert page.top(H) == page_hash(H, page.slots)


def test_page_roundtrip_and_corruption() -> None:
    for slots in _mixed_pages():
        raw = _page(slots).encode()
        back = Page.decode(raw, 32)
        assert back.encode() == raw
        assert back.top(H) == page_hash(H, slots)
    raw = _page(_mixed_pages()[4]).encode()
    for bad in (raw[:-1], raw + b"\x00", b"\x00", b"\x00\x01\x00\x02" + raw[4:]):
        with pytest.raises(StateCorruption):
            Page.decode(bad, 32)


def test_proof_roundtrip_encoding_and_bounds() -> None:
    proof = StateProof((bytes(32), b"\x01" * 32), b"\x02" * 32, b"\x03" * 32)
    assert decode_proof(encode_proof(proof)) == proof
    with pytest.raises(CodecError):
        decode_proof(encode_proof(proof) + b"\x00")
    with pytest.raises(CodecError):
        decode_proof(encode_proof(StateProof((bytes(32),) * 257)))


def test_verify_rejects_malformed_inputs_without_raising() -> None:
    root = compute_root(SUITE, {b"k": b"v"})
    good = StateProof(())
    assert verify_state_proof(SUITE, root, b"k", b"v", good)
    assert not verify_state_proof(SUITE, root[:31], b"k", b"v", good)
    assert not verify_state_proof(SUITE, root, b"k", b"v", StateProof((b"short",)))
    assert not verify_state_proof(SUITE, root, b"k", None, good)
    assert not verify_state_proof(SUITE, root, b"k", None, StateProof((), H.key(b"k"), H.zero))
    assert not verify_state_proof(SUITE, root, b"k", b"v", StateProof((), b"x" * 32, b"y" * 32))
    assert not verify_state_proof(SUITE, root, "k", b"v", good)  # type: ignore[arg-type]
    assert not verify_state_proof(SUITE, root, b"k", b"v", None)  # type: ignore[arg-type]


def test_absence_proof_via_other_leaf() -> None:
    root = compute_root(SUITE, {b"k": b"v"})
    proof = StateProof((), H.key(b"k"), H.value(b"v"))
    assert verify_state_proof(SUITE, root, b"other", None, proof)
    assert not verify_state_proof(SUITE, root, b"other", b"v", proof)
    assert not verify_state_proof(SUITE, root, b"other", None, StateProof(()))


def test_sm3_suite_gives_its_own_roots_and_proofs(tmp_path: Path) -> None:
    sm3 = get_suite("sm2-sm3")
    items = {b"k%d" % i: b"v%d" % i for i in range(40)}
    assert compute_root(sm3, items) != compute_root(SUITE, items)
    store = LmdbStore(LmdbConfig(str(tmp_path), durable=False, map_size_bytes=2**26))
    state = AuthenticatedState(store, sm3)
    state.commit(state.prepare_changes(None, sorted(items.items())))
    assert state.root() == compute_root(sm3, items)
    for key in (b"k7", b"absent"):
        value, proof = state.prove(key)
        assert verify_state_proof(sm3, state.root(), key, value, proof)
        assert not verify_state_proof(SUITE, state.root(), key, value, proof)
    store.close()


def test_page_rehash_of_changed_slots_matches_rebuilding_the_page() -> None:
    # Slots emptied, filled, turned into children, alone or several at once: the
    # incremental rehash keeps exactly the inner hashes a page built afresh has.
    rng = random.Random(7)
    kh = [H.key(bytes([i])) for i in range(64)]
    choices: list[Slot] = [None, None, Child(9, kh[0])] + [Leaf.of(k, kh[1]) for k in kh[2:8]]
    choices += [_bucket(kh[8:10]), _bucket(kh[10:14])]
    for _round in range(300):
        slots = [rng.choice(choices) for _ in range(16)]
        page = _page(slots)
        for index_set in (rng.sample(range(16), 1), rng.sample(range(16), rng.randint(2, 5))):
            dirty = 0
            for index in index_set:
                slots[index] = rng.choice(choices)
                page.set_slot(index, slots[index])
                dirty |= 1 << index
            page.rehash(H, dirty)
            fresh = _page(slots)
            assert page.inner == fresh.inner
            assert page.top(H) == page_hash(H, slots)
            assert Page.decode(page.encode(), 32).top(H) == page.top(H)
