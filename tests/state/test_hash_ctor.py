"""The C routine's hashing through OpenSSL or a suite's hash constructor: same roots as
the suite's callable."""

from __future__ import annotations

import functools
import hashlib
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaincity.crypto import get_suite
from chaincity.crypto.ed25519 import Ed25519Sha256
from chaincity.crypto.suite import CryptoSuite, HashState
from chaincity.state import AuthenticatedState, LmdbConfig, LmdbStore
from chaincity.state.tree import Hasher
from chaincity.state.writer import NATIVE_APPLY, native_digest_name

if NATIVE_APPLY is None:  # pragma: no cover - a build without a compiler
    pytest.fail("chaincity.state._treecore is not built (pip install -e . builds it)")

SHA = get_suite("ed25519-sha256")
SM = get_suite("sm2-sm3")


def _sm3_ctor() -> Callable[[bytes], HashState] | None:
    if "sm3" not in hashlib.algorithms_available:
        return None
    return functools.partial(hashlib.new, "sm3")


class _WithCtor(CryptoSuite):
    """A suite that delegates to ``inner`` but offers (or withholds) a constructor."""

    def __init__(
        self,
        inner: CryptoSuite,
        ctor: Callable[[bytes], HashState] | None,
        hash_name: str | None = None,
    ) -> None:
        self._inner = inner
        self.hash_name = hash_name
        self.name = inner.name
        self.hash_size = inner.hash_size
        self.private_key_size = inner.private_key_size
        self.public_key_size = inner.public_key_size
        self.signature_size = inner.signature_size
        self.hash_constructor = ctor

    def hash(self, data: bytes) -> bytes:
        return self._inner.hash(data)

    def generate_private_key(self) -> bytes:
        return self._inner.generate_private_key()

    def public_key(self, private_key: bytes) -> bytes:
        return self._inner.public_key(private_key)

    def sign(self, private_key: bytes, message: bytes) -> bytes:
        return self._inner.sign(private_key, message)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return self._inner.verify(public_key, message, signature)


def test_ed25519_offers_sha256_and_the_hasher_takes_it() -> None:
    assert isinstance(SHA, Ed25519Sha256)
    assert SHA.hash_constructor is hashlib.sha256
    assert Hasher(SHA).hash_ctor is hashlib.sha256
    for data in (b"", b"x", bytes(range(256)) * 5):
        assert hashlib.sha256(data).digest() == SHA.hash(data)


def test_sm3_keeps_its_callable() -> None:
    assert SM.hash_constructor is None
    assert Hasher(SM).hash_ctor is None


def test_a_constructor_that_disagrees_with_the_suite_is_ignored() -> None:
    wrong = _WithCtor(SHA, hashlib.sha3_256)
    assert Hasher(wrong).hash_ctor is None
    assert Hasher(_WithCtor(SHA, hashlib.sha256)).hash_ctor is hashlib.sha256


def _states(suites: list[CryptoSuite]) -> tuple[list[str], list[LmdbStore], list[Any]]:
    dirs = [tempfile.mkdtemp(prefix="chaincity-ctor-") for _ in suites]
    stores = [LmdbStore(LmdbConfig(d, durable=False, map_size_bytes=2**28)) for d in dirs]
    states = [
        AuthenticatedState(store, suite, window=3, page_cache_max=50, native=True)
        for store, suite in zip(stores, suites, strict=True)
    ]
    return dirs, stores, states


def _same_updates(
    dirs: list[str],
    stores: list[LmdbStore],
    states: list[Any],
    batches: list[dict[bytes, bytes | None]],
) -> None:
    """Commit every batch on both states; each update must give the same root, pages
    and replaced pages. Closes and removes the stores."""
    try:
        for batch in batches:
            updates = [s.prepare_changes(s.latest_version, batch.items()) for s in states]
            fast, slow = updates
            assert fast.root == slow.root
            assert fast.pages == slow.pages
            assert fast.stale == slow.stale
            for state, update in zip(states, updates, strict=True):
                state.commit(update)
    finally:
        for store, path in zip(stores, dirs, strict=True):
            store.close()
            shutil.rmtree(path, ignore_errors=True)


BATCHES = st.lists(
    st.dictionaries(st.binary(min_size=1, max_size=2), st.none() | st.binary(max_size=3)),
    min_size=1,
    max_size=4,
)


def _suite_pairs() -> list[tuple[CryptoSuite, CryptoSuite]]:
    pairs: list[tuple[CryptoSuite, CryptoSuite]] = [(SHA, _WithCtor(SHA, None))]
    sm3 = _sm3_ctor()
    if sm3 is not None:
        pairs.append((_WithCtor(SM, sm3), SM))
    return pairs


@pytest.mark.parametrize("pair", range(2))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=BATCHES)
def test_the_constructor_path_gives_the_callables_roots_and_pages(
    pair: int, batches: list[dict[bytes, bytes | None]]
) -> None:
    pairs = _suite_pairs()
    if pair >= len(pairs):
        pair = 0  # no SM3 in this hashlib: the SHA-256 pair again
    with_ctor, without = pairs[pair]
    assert Hasher(with_ctor).hash_ctor is not None and Hasher(without).hash_ctor is None
    dirs, stores, states = _states([with_ctor, without])
    _same_updates(dirs, stores, states, batches)


def test_the_c_routine_checks_what_the_constructor_returns() -> None:
    from chaincity.state import _treecore

    hasher = Hasher(SHA)
    change: list[tuple[bytes, bytes | None]] = [
        (b"\x01" * 32, b"\x02" * 32),
        (b"\x11" * 32, b"\x03" * 32),
    ]

    def apply(ctor: object) -> bytes:
        root, _pages, _stale = _treecore.apply(
            change, None, 0, lambda key: b"", SHA.hash, hasher.leaf_prefix,
            hasher.node_prefix, 32, ctor,  # type: ignore[arg-type]
        )  # fmt: skip
        return root

    assert apply(hashlib.sha256) == apply(None)

    class _Short:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def digest(self) -> bytes:
            return b"short"

    def failing(data: bytes) -> HashState:
        raise RuntimeError("constructor broke")

    with pytest.raises(ValueError, match="wrong size"):
        apply(_Short)
    with pytest.raises(RuntimeError, match="constructor broke"):
        apply(failing)
    with pytest.raises(AttributeError):
        apply(lambda data: object())
    with pytest.raises(TypeError, match="callable"):
        apply(3)


def _openssl_built() -> bool:
    from chaincity.state import _treecore

    return _treecore.digest("SHA256", b"abc") == hashlib.sha256(b"abc").digest()


def test_the_suites_name_their_hash_and_the_name_is_checked() -> None:
    assert (SHA.hash_name, SM.hash_name) == ("SHA256", "SM3")
    if not _openssl_built():  # a build without OpenSSL's headers: never named
        assert native_digest_name(SHA) is None and native_digest_name(SM) is None
        return
    assert native_digest_name(SHA) == "SHA256"
    assert native_digest_name(SM) in ("SM3", None)  # None: an OpenSSL without SM3
    # A name OpenSSL lacks, or whose digest is not the suite's hash, is not used.
    for name in ("no-such-digest", "SHA3-256", "SM3", None):
        assert native_digest_name(_WithCtor(SHA, None, name)) is None


def _apply_named(name: object) -> bytes:
    from chaincity.state import _treecore

    hasher = Hasher(SHA)
    changes: list[tuple[bytes, bytes | None]] = [
        (b"\x01" * 32, b"\x02" * 32),
        (b"\x11" * 32, b"\x03" * 32),
    ]
    root, _pages, _stale = _treecore.apply(
        changes, None, 0, lambda key: b"", SHA.hash, hasher.leaf_prefix, hasher.node_prefix,
        32, None, (), (), None, name,  # type: ignore[arg-type]
    )  # fmt: skip
    return root


def test_the_c_routine_refuses_a_digest_it_cannot_compute() -> None:
    with pytest.raises(TypeError, match="digest_name"):
        _apply_named(b"SHA256")
    with pytest.raises(ValueError):
        _apply_named("no-such-digest")
    if _openssl_built():
        with pytest.raises(ValueError, match="of 32 bytes"):
            _apply_named("SHA512")
        assert _apply_named("SHA256") == _apply_named(None)
    else:
        with pytest.raises(ValueError, match="no OpenSSL"):
            _apply_named("SHA256")


@pytest.mark.parametrize("suite", [SHA, SM], ids=["sha256", "sm3"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=BATCHES)
def test_the_openssl_path_gives_the_callables_roots_and_pages(
    suite: CryptoSuite, batches: list[dict[bytes, bytes | None]]
) -> None:
    callable_only = _WithCtor(suite, None)  # no constructor, no name: the callable
    dirs, stores, states = _states([suite, callable_only])
    if _openssl_built() and suite is SHA:
        assert states[0]._digest_name == "SHA256"
    assert states[1]._digest_name is None
    _same_updates(dirs, stores, states, batches)


def test_digests_hashes_many_items_and_passes_none_through() -> None:
    from chaincity.state import _treecore

    items: list[bytes | None] = [b"", b"abc", None, bytes(range(256)) * 3]
    if not _openssl_built():
        with pytest.raises(ValueError, match="no OpenSSL"):
            _treecore.digests("SHA256", items)
        return
    expected = [None if i is None else hashlib.sha256(i).digest() for i in items]
    assert _treecore.digests("SHA256", items) == expected
    assert _treecore.digests("SHA256", ()) == []
    if native_digest_name(SM) == "SM3":
        assert _treecore.digests("SM3", [b"abc"]) == [SM.hash(b"abc")]
    with pytest.raises(TypeError, match="bytes or None"):
        _treecore.digests("SHA256", [b"a", "text"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="no digest"):
        _treecore.digests("no-such-digest", [b"a"])
