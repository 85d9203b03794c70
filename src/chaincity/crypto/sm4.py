"""SM4 (GB/T 32907) in GCM mode: authenticated encryption for private data.

The cipher runs in the OpenSSL that the ``cryptography`` wheel carries; the
mode and sizes follow RFC 8998 (SM4-GCM as used in TLS 1.3):

- key: 16 bytes; nonce: 12 bytes, never reused under one key (a repeated
  nonce reveals the XOR of two plaintexts and lets an attacker forge tags);
- output: ciphertext || 16-byte tag, the ciphertext as long as the plaintext;
- ``aad`` is authenticated but not encrypted (say, the record's key and the
  chain id, so a ciphertext cannot be moved to another record).

Decryption checks the tag before returning anything, and raises CryptoError
for a wrong key, nonce, aad or any changed byte.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from chaincity.crypto.suite import CryptoError

SM4_KEY_SIZE = 16
SM4_GCM_NONCE_SIZE = 12
SM4_GCM_TAG_SIZE = 16
# GCM's counter allows 2**32 - 2 blocks per nonce; far below that, a bound
# that keeps one record in memory twice at most.
SM4_GCM_PLAINTEXT_SIZE_MAX = 64 * 1024 * 1024
SM4_GCM_AAD_SIZE_MAX = 64 * 1024


def _check_sizes(key: bytes, nonce: bytes, aad: bytes) -> None:
    if len(key) != SM4_KEY_SIZE:
        raise CryptoError(f"sm4 key must be {SM4_KEY_SIZE} bytes, got {len(key)}")
    if len(nonce) != SM4_GCM_NONCE_SIZE:
        raise CryptoError(f"sm4-gcm nonce must be {SM4_GCM_NONCE_SIZE} bytes, got {len(nonce)}")
    if len(aad) > SM4_GCM_AAD_SIZE_MAX:
        raise CryptoError(f"sm4-gcm aad larger than {SM4_GCM_AAD_SIZE_MAX} bytes")


def sm4_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """Ciphertext || tag of ``plaintext`` under ``key`` and a fresh ``nonce``."""
    _check_sizes(key, nonce, aad)
    if len(plaintext) > SM4_GCM_PLAINTEXT_SIZE_MAX:
        raise CryptoError(f"sm4-gcm plaintext larger than {SM4_GCM_PLAINTEXT_SIZE_MAX} bytes")
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    return ciphertext + encryptor.tag


def sm4_gcm_decrypt(key: bytes, nonce: bytes, sealed: bytes, aad: bytes = b"") -> bytes:
    """The plaintext of ``sealed`` (ciphertext || tag); CryptoError if it does not verify."""
    _check_sizes(key, nonce, aad)
    if len(sealed) < SM4_GCM_TAG_SIZE:
        raise CryptoError(f"sm4-gcm input shorter than its {SM4_GCM_TAG_SIZE}-byte tag")
    if len(sealed) > SM4_GCM_PLAINTEXT_SIZE_MAX + SM4_GCM_TAG_SIZE:
        raise CryptoError(f"sm4-gcm input larger than {SM4_GCM_PLAINTEXT_SIZE_MAX} bytes")
    ciphertext, tag = sealed[:-SM4_GCM_TAG_SIZE], sealed[-SM4_GCM_TAG_SIZE:]
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    plaintext = decryptor.update(ciphertext)
    try:
        return plaintext + decryptor.finalize()
    except InvalidTag:
        raise CryptoError("sm4-gcm authentication failed") from None


__all__ = [
    "SM4_GCM_NONCE_SIZE",
    "SM4_GCM_TAG_SIZE",
    "SM4_KEY_SIZE",
    "sm4_gcm_decrypt",
    "sm4_gcm_encrypt",
]
