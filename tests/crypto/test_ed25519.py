"""Ed25519 suite: RFC 8032 section 7.1 vectors and the edge-case rules the
module docstring promises (every node must accept and reject the same bytes)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaincity.crypto import CryptoError, get_suite
from chaincity.crypto.ed25519 import Ed25519Sha256

# RFC 8032 section 7.1: (secret key, public key, message, signature), all hex.
RFC8032_VECTORS = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (  # TEST SHA(abc): the message is SHA-512("abc").
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
        "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
]

# The order of the base point, RFC 8032 section 5.1.
GROUP_ORDER_L = 2**252 + 27742317777372353535851937790883648493

# Encodings of points of small order (1, 2, 4 and 8).
SMALL_ORDER_KEYS = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
]

# y = p + 2 >= p: a non-canonical field element.
NON_CANONICAL_KEY = "efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"


@pytest.fixture(scope="module")
def suite() -> Ed25519Sha256:
    return Ed25519Sha256()


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032_VECTORS)
def test_rfc8032_vectors_sign_and_verify(
    suite: Ed25519Sha256, secret: str, public: str, message: str, signature: str
) -> None:
    seed, msg = bytes.fromhex(secret), bytes.fromhex(message)
    assert suite.public_key(seed).hex() == public
    assert suite.sign(seed, msg).hex() == signature
    assert suite.verify(bytes.fromhex(public), msg, bytes.fromhex(signature))


@pytest.mark.parametrize("index", range(len(RFC8032_VECTORS)))
def test_rfc8032_vectors_reject_tampering(suite: Ed25519Sha256, index: int) -> None:
    _, public, message, signature = RFC8032_VECTORS[index]
    pub, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    assert not suite.verify(pub, msg + b"\x00", sig)
    for position in (0, 31, 32, 63):
        damaged = bytearray(sig)
        damaged[position] ^= 0x01
        assert not suite.verify(pub, msg, bytes(damaged))
    other_public = RFC8032_VECTORS[(index + 1) % len(RFC8032_VECTORS)][1]
    assert not suite.verify(bytes.fromhex(other_public), msg, sig)


def test_non_canonical_s_is_rejected(suite: Ed25519Sha256) -> None:
    _, public, message, signature = RFC8032_VECTORS[1]
    sig = bytes.fromhex(signature)
    s = int.from_bytes(sig[32:], "little")
    # S + L satisfies the group equation; only the range check refuses it.
    malleated = sig[:32] + (s + GROUP_ORDER_L).to_bytes(32, "little")
    assert suite.verify(bytes.fromhex(public), bytes.fromhex(message), sig)
    assert not suite.verify(bytes.fromhex(public), bytes.fromhex(message), malleated)


@pytest.mark.parametrize("public", SMALL_ORDER_KEYS)
def test_small_order_public_key_is_rejected(suite: Ed25519Sha256, public: str) -> None:
    key = bytes.fromhex(public)
    assert not suite.is_valid_public_key(key)
    # With A and R of small order and S = 0, the cofactorless equation
    # [S]B = R + [k]A holds for many messages; the rules must still refuse it.
    forged = bytes.fromhex(SMALL_ORDER_KEYS[0]) + bytes(32)
    for message in (b"", b"transfer 100", b"x" * 100):
        assert not suite.verify(key, message, forged)


def test_non_canonical_public_key_is_rejected(suite: Ed25519Sha256) -> None:
    assert not suite.is_valid_public_key(bytes.fromhex(NON_CANONICAL_KEY))
    _, _, message, signature = RFC8032_VECTORS[0]
    assert not suite.verify(
        bytes.fromhex(NON_CANONICAL_KEY), bytes.fromhex(message), bytes.fromhex(signature)
    )


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_wrong_sizes_return_false(suite: Ed25519Sha256, size: int) -> None:
    _, public, message, signature = RFC8032_VECTORS[1]
    pub, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    assert not suite.verify(bytes(size), msg, sig)
    assert not suite.verify(pub, msg, sig[:size] if size < 64 else sig + b"\x00")
    assert not suite.is_valid_public_key(bytes(size))


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_wrong_size_private_key_raises(suite: Ed25519Sha256, size: int) -> None:
    with pytest.raises(CryptoError):
        suite.public_key(bytes(size))
    with pytest.raises(CryptoError):
        suite.sign(bytes(size), b"message")


def test_generated_keys_are_valid_and_distinct(suite: Ed25519Sha256) -> None:
    keys = {suite.generate_private_key() for _ in range(8)}
    assert len(keys) == 8
    for key in keys:
        assert suite.is_valid_public_key(suite.public_key(key))


def test_registry_returns_the_suite() -> None:
    suite = get_suite("ed25519-sha256")
    assert isinstance(suite, Ed25519Sha256)
    assert suite.hash(b"abc").hex() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    with pytest.raises(CryptoError, match="unknown crypto suite"):
        get_suite("rsa-md5")


@settings(max_examples=50, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=512))
def test_round_trip_and_bit_flip(seed: bytes, message: bytes) -> None:
    suite = get_suite("ed25519-sha256")
    public = suite.public_key(seed)
    signature = suite.sign(seed, message)
    assert suite.verify(public, message, signature)
    damaged = bytearray(signature)
    damaged[len(message) % 64] ^= 0x80
    assert not suite.verify(public, message, bytes(damaged))


@settings(max_examples=100, deadline=None)
@given(
    public=st.binary(max_size=40),
    message=st.binary(max_size=64),
    signature=st.binary(max_size=70),
)
def test_verify_never_raises(public: bytes, message: bytes, signature: bytes) -> None:
    assert get_suite("ed25519-sha256").verify(public, message, signature) in (True, False)
