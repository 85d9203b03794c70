"""SM4: the GB/T 32907 block example and RFC 8998's SM4-GCM example, round
trips, and refusal of every tampered input."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from chaincity.crypto import CryptoError
from chaincity.crypto.sm4 import (
    SM4_GCM_AAD_SIZE_MAX,
    SM4_GCM_TAG_SIZE,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)

# GB/T 32907-2016 Appendix A, example 1: one block, key = plaintext.
GBT32907_KEY = "0123456789abcdeffedcba9876543210"
GBT32907_CIPHERTEXT = "681edf34d206965e86b3e94f536e4246"

# RFC 8998 Appendix A.1, SM4-GCM.
RFC8998_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
RFC8998_NONCE = bytes.fromhex("00001234567800000000ABCD")
RFC8998_AAD = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
RFC8998_PLAINTEXT = bytes.fromhex(
    "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
    "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
)
RFC8998_SEALED = bytes.fromhex(
    "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
    "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
    "83DE3541E4C2B58177E065A9BF7B62EC"
)


def test_gbt32907_block_vector() -> None:
    # Pins the block cipher under sm4_gcm_* (the library's SM4) to the standard.
    key = bytes.fromhex(GBT32907_KEY)
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    assert (encryptor.update(key) + encryptor.finalize()).hex() == GBT32907_CIPHERTEXT


def test_rfc8998_gcm_vector() -> None:
    sealed = sm4_gcm_encrypt(RFC8998_KEY, RFC8998_NONCE, RFC8998_PLAINTEXT, RFC8998_AAD)
    assert sealed == RFC8998_SEALED
    assert sm4_gcm_decrypt(RFC8998_KEY, RFC8998_NONCE, sealed, RFC8998_AAD) == RFC8998_PLAINTEXT


@pytest.mark.parametrize("position", [0, 31, 63, 64, 79])
def test_changed_byte_is_refused(position: int) -> None:
    damaged = bytearray(RFC8998_SEALED)
    damaged[position] ^= 0x01
    with pytest.raises(CryptoError, match="authentication failed"):
        sm4_gcm_decrypt(RFC8998_KEY, RFC8998_NONCE, bytes(damaged), RFC8998_AAD)


def test_wrong_key_nonce_or_aad_is_refused() -> None:
    other_key = bytes(16)
    other_nonce = bytes(12)
    for key, nonce, aad in [
        (other_key, RFC8998_NONCE, RFC8998_AAD),
        (RFC8998_KEY, other_nonce, RFC8998_AAD),
        (RFC8998_KEY, RFC8998_NONCE, RFC8998_AAD + b"x"),
        (RFC8998_KEY, RFC8998_NONCE, b""),
    ]:
        with pytest.raises(CryptoError):
            sm4_gcm_decrypt(key, nonce, RFC8998_SEALED, aad)


def test_truncated_input_is_refused() -> None:
    with pytest.raises(CryptoError, match="shorter"):
        sm4_gcm_decrypt(RFC8998_KEY, RFC8998_NONCE, RFC8998_SEALED[:15])
    with pytest.raises(CryptoError, match="authentication failed"):
        sm4_gcm_decrypt(RFC8998_KEY, RFC8998_NONCE, RFC8998_SEALED[:-1], RFC8998_AAD)


@pytest.mark.parametrize(
    ("key_size", "nonce_size"), [(15, 12), (17, 12), (32, 12), (16, 8), (16, 16)]
)
def test_wrong_sizes_raise(key_size: int, nonce_size: int) -> None:
    with pytest.raises(CryptoError, match="bytes"):
        sm4_gcm_encrypt(bytes(key_size), bytes(nonce_size), b"data")
    with pytest.raises(CryptoError, match="bytes"):
        sm4_gcm_decrypt(bytes(key_size), bytes(nonce_size), bytes(32))


def test_oversized_aad_raises() -> None:
    with pytest.raises(CryptoError, match="aad"):
        sm4_gcm_encrypt(bytes(16), bytes(12), b"", b"a" * (SM4_GCM_AAD_SIZE_MAX + 1))


def test_empty_plaintext_still_authenticates() -> None:
    sealed = sm4_gcm_encrypt(bytes(16), bytes(12), b"", b"header")
    assert len(sealed) == SM4_GCM_TAG_SIZE
    assert sm4_gcm_decrypt(bytes(16), bytes(12), sealed, b"header") == b""
    with pytest.raises(CryptoError):
        sm4_gcm_decrypt(bytes(16), bytes(12), sealed, b"other")


@settings(max_examples=60, deadline=None)
@given(
    key=st.binary(min_size=16, max_size=16),
    nonce=st.binary(min_size=12, max_size=12),
    plaintext=st.binary(max_size=600),
    aad=st.binary(max_size=64),
)
def test_round_trip(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> None:
    sealed = sm4_gcm_encrypt(key, nonce, plaintext, aad)
    assert len(sealed) == len(plaintext) + SM4_GCM_TAG_SIZE
    assert sm4_gcm_decrypt(key, nonce, sealed, aad) == plaintext
    damaged = bytearray(sealed)
    damaged[len(plaintext) % len(sealed)] ^= 0x40
    with pytest.raises(CryptoError):
        sm4_gcm_decrypt(key, nonce, bytes(damaged), aad)
