"""SM3: the GB/T 32905 examples, on every backend the suite may pick."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaincity.crypto import get_suite
from chaincity.crypto.sm2 import _cryptography_sm3, _hashlib_sm3, sm3

# GB/T 32905-2016 Appendix A, examples 1 and 2.
GBT32905_VECTORS = [
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
]

BACKENDS = [pytest.param(_hashlib_sm3, id="hashlib"), pytest.param(_cryptography_sm3, id="pyca")]


@pytest.mark.parametrize(("message", "digest"), GBT32905_VECTORS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_gbt32905_vectors(backend: object, message: bytes, digest: str) -> None:
    assert callable(backend)
    assert backend(message).hex() == digest


@pytest.mark.parametrize(("message", "digest"), GBT32905_VECTORS)
def test_suite_hash_is_sm3(message: bytes, digest: str) -> None:
    suite = get_suite("sm2-sm3")
    assert suite.hash_size == 32
    assert suite.hash(message).hex() == digest


def test_tagged_hash_separates_domains() -> None:
    suite = get_suite("sm2-sm3")
    data = b"payload"
    assert suite.tagged_hash(b"chaincity/tx/v1", data) != suite.tagged_hash(
        b"chaincity/vote/v1", data
    )
    # The length prefix keeps (tag, data) pairs from colliding by shifting bytes.
    assert suite.tagged_hash(b"ab", b"c") != suite.tagged_hash(b"a", b"bc")
    assert suite.tagged_hash(b"ab", b"c") == sm3(b"\x02abc")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2048))
def test_backends_agree(data: bytes) -> None:
    assert _hashlib_sm3(data) == _cryptography_sm3(data)
    assert len(sm3(data)) == 32
