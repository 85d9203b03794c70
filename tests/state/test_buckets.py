"""Buckets: subtrees of a few keys kept in their parent's page.

The tree's hashes do not depend on how keys are stored, so these tests look at
the storage itself: its shape is a function of the key set, whatever history led
there, and pages written before buckets existed still update and prove.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from chaincity.crypto import get_suite
from chaincity.state import (
    AuthenticatedState,
    LmdbConfig,
    LmdbStore,
    compute_root,
    verify_state_proof,
)
from chaincity.state import page as page_module
from chaincity.state import writer as writer_module
from chaincity.state.tree import (
    BUCKET_MAX,
    Bucket,
    Child,
    Hasher,
    Leaf,
    StateCorruption,
    bucket_of,
    page_hash,
)
from chaincity.state.writer import NATIVE_APPLY

SUITE = get_suite("ed25519-sha256")
H = Hasher(SUITE)
WRITERS = [False] + ([True] if NATIVE_APPLY is not None else [])
Shape = list[tuple[bytes, int, str, tuple[bytes, ...]]]


@pytest.fixture
def store() -> Iterator[LmdbStore]:
    path = tempfile.mkdtemp(prefix="chaincity-buckets-")
    kv = LmdbStore(LmdbConfig(path, durable=False))
    try:
        yield kv
    finally:
        kv.close()
        shutil.rmtree(path, ignore_errors=True)


def _walk(state: AuthenticatedState) -> tuple[Shape, int]:
    """The latest tree's slots (path, index, kind, key hashes), and its key count. Checks
    on the way that every page and bucket hashes to what refers to it, and that the keys
    under a child page are more than BUCKET_MAX."""
    shape: Shape = []
    with state.store.read() as txn:
        root, root_version = state.root_ref(txn, state.latest_version or 0)

        def visit(version: int, path: bytes, expected: bytes) -> int:
            page = state.load_page(txn, version, path)
            assert page_hash(H, page.slots) == expected
            keys = 0
            for index, slot in enumerate(page.slots):
                if type(slot) is Leaf:
                    shape.append((path, index, "leaf", (slot.key_hash,)))
                    keys += 1
                elif type(slot) is Bucket:
                    assert 2 <= len(slot.leaves) <= BUCKET_MAX
                    assert bucket_of(H, slot.leaves, len(path)).hash == slot.hash
                    shape.append((path, index, "bucket", tuple(x.key_hash for x in slot.leaves)))
                    keys += len(slot.leaves)
                elif type(slot) is Child:
                    shape.append((path, index, "child", ()))
                    below = visit(slot.version, path + bytes((index,)), slot.hash)
                    assert below > BUCKET_MAX, "a child page holds few enough keys for a bucket"
                    keys += below
            return keys

        count = visit(root_version, b"", root)
    return shape, count


def _key(i: int) -> bytes:
    return b"k" + i.to_bytes(4, "big")


@pytest.mark.parametrize("native", WRITERS)
def test_the_stored_shape_is_a_function_of_the_keys(native: bool) -> None:
    rng = random.Random(11)
    model = {_key(i): b"v%d" % i for i in range(3000)}
    doomed = rng.sample(sorted(model), 2700)
    paths = [tempfile.mkdtemp(prefix="chaincity-buckets-") for _ in range(2)]
    stores = [LmdbStore(LmdbConfig(p, durable=False)) for p in paths]
    try:
        grown, direct = (AuthenticatedState(s, SUITE, window=2, native=native) for s in stores)
        items = list(model.items())
        for start in range(0, len(items), 700):  # grown in batches, then shrunk
            grown.commit(grown.prepare_changes(grown.latest_version, items[start : start + 700]))
        for start in range(0, len(doomed), 300):
            batch = doomed[start : start + 300]
            grown.commit(grown.prepare_changes(grown.latest_version, [(k, None) for k in batch]))
            for key in batch:
                del model[key]
        direct.commit(direct.prepare_changes(None, list(model.items())))
        grown_shape, grown_keys = _walk(grown)
        assert grown_shape == _walk(direct)[0]
        assert grown_keys == len(model) == 300
        kinds = {kind for _path, _index, kind, _keys in grown_shape}
        assert kinds == {"leaf", "bucket", "child"}
        assert grown.root() == compute_root(SUITE, model)
    finally:
        for kv, path in zip(stores, paths, strict=True):
            kv.close()
            shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("native", WRITERS)
def test_pages_written_before_buckets_still_update_and_prove(
    store: LmdbStore, native: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Python writer that keeps no more than one key in a slot writes the pages of
    # earlier builds: every two keys get a page of their own.
    with monkeypatch.context() as patched:
        patched.setattr(page_module, "BUCKET_MAX", 1)
        patched.setattr(writer_module, "BUCKET_MAX", 1)
        old = AuthenticatedState(store, SUITE, window=2, native=False)
        model = {_key(i): b"old" for i in range(400)}
        old.commit(old.prepare_changes(None, list(model.items())))
        shape, _count = _walk_unchecked(old)
        assert "bucket" not in {kind for _p, _i, kind, _k in shape}
        old.close()
    state = AuthenticatedState(store, SUITE, window=2, native=native)
    rng = random.Random(5)
    for _version in range(6):
        changes: dict[bytes, bytes | None] = {}
        for i in rng.sample(range(600), 120):
            changes[_key(i)] = None if rng.random() < 0.4 else b"new%d" % i
        state.commit(state.prepare_changes(state.latest_version, list(changes.items())))
        for key, value in changes.items():
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        assert state.root() == compute_root(SUITE, model)
    root = state.root()
    for i in range(600):
        value, proof = state.prove(_key(i))
        assert value == model.get(_key(i))
        assert verify_state_proof(SUITE, root, _key(i), value, proof)
    shape, count = _walk_unchecked(state)
    assert count == len(model)
    assert "bucket" in {kind for _p, _i, kind, _k in shape}


def _walk_unchecked(state: AuthenticatedState) -> tuple[Shape, int]:
    """:func:`_walk` without the check that child pages hold more than BUCKET_MAX keys
    (pages from before buckets hold as few as two)."""
    shape: Shape = []
    count = 0
    with state.store.read() as txn:
        todo = [(state.root_ref(txn, state.latest_version or 0)[1], b"")]
        while todo:
            version, path = todo.pop()
            for index, slot in enumerate(state.load_page(txn, version, path).slots):
                if type(slot) is Child:
                    todo.append((slot.version, path + bytes((index,))))
                    shape.append((path, index, "child", ()))
                elif type(slot) is Bucket:
                    shape.append((path, index, "bucket", ()))
                    count += len(slot.leaves)
                elif type(slot) is Leaf:
                    shape.append((path, index, "leaf", ()))
                    count += 1
    return shape, count


def test_a_proof_through_a_bucket_names_the_other_key_for_an_absent_one(
    store: LmdbStore,
) -> None:
    state = AuthenticatedState(store, SUITE, window=2, native=False)
    model = {_key(i): b"v" for i in range(40)}
    state.commit(state.prepare_changes(None, list(model.items())))
    shape, _count = _walk(state)
    buckets = [keys for path, _i, kind, keys in shape if kind == "bucket" and path == b""]
    assert buckets, "40 keys leave some root slot with two to four of them"
    root = state.root()
    # Absent keys whose paths end in the root page's buckets: each proof shows an empty
    # subtree or the one key that shares its path, and verifies; each present key too.
    for i in range(40, 400):
        value, proof = state.prove(_key(i))
        assert value is None
        assert verify_state_proof(SUITE, root, _key(i), None, proof)
        assert not verify_state_proof(SUITE, root, _key(i), b"v", proof)
    for key in model:
        value, proof = state.prove(key)
        assert verify_state_proof(SUITE, root, key, b"v", proof)
        assert not verify_state_proof(SUITE, root, key, b"w", proof)


def _bucket_raw(count: int, leaves: list[bytes]) -> bytes:
    return bytes((count,)) + b"\x07" * 32 + b"".join(leaves)


def test_malformed_buckets_are_corruption() -> None:
    kh = sorted(H.key(bytes([i])) for i in range(6))
    leaves = [k + H.zero for k in kh]
    good = _bucket_raw(2, leaves[:2])
    head = (0).to_bytes(2, "big") + (1).to_bytes(2, "big")  # slot 0: a bucket, no MANY hash
    # A page holding only a bucket in slot 0 has MANY positions above it: their hashes.
    inner = b"\x09" * 32 * 4
    page_module.Page.decode(head + good + inner, 32)  # well formed
    for bad in (
        _bucket_raw(1, leaves[:1]),
        _bucket_raw(BUCKET_MAX + 1, leaves[: BUCKET_MAX + 1]),
        _bucket_raw(2, [leaves[1], leaves[0]]),
        _bucket_raw(2, [leaves[0], leaves[0]]),
        _bucket_raw(3, leaves[:2]),
        b"",
    ):
        with pytest.raises(StateCorruption):
            page_module.Page.decode(head + bad + inner, 32)
