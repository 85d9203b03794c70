"""The national suite: SM2 signatures (GB/T 32918) with SM3 hashing (GB/T 32905).

SM2 runs in Tongsuo (the OpenSSL fork that carries the Chinese national
algorithms) through the ``tongsuopy`` bindings; SM3 comes from the OpenSSL
that Python's ``hashlib`` is linked to, or from ``cryptography`` where that
OpenSSL lacks SM3. ``docs/crypto.md`` records why, with measured figures.

Encodings are raw and fixed-size, so canonical messages never hold ASN.1:

- private key: 32 bytes, big-endian d with 1 <= d <= n-2 (SM2 signing
  inverts 1+d, so d = n-1 has no signature; Tongsuo loops forever on it);
- public key: 65 bytes, 0x04 || X || Y, a point on the recommended curve;
- signature: 64 bytes, r || s, each big-endian with 1 <= r, s <= n-1.

The signed digest is e = SM3(Z || M) with Z the SM3 user-ID digest of the
signer's key under the user id ``1234567812345678`` (GM/T 0009 default), the
same id OpenSSL uses when told ``distid:1234567812345678``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes as crypto_hashes
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from tongsuopy.crypto import exceptions as tongsuo_exceptions
from tongsuopy.crypto import hashes as tongsuo_hashes
from tongsuopy.crypto import serialization as tongsuo_serialization
from tongsuopy.crypto.asymciphers import ec as tongsuo_ec

from chaincity.crypto.suite import CryptoError, CryptoSuite

DEFAULT_USER_ID = b"1234567812345678"

# Recommended curve parameters, GB/T 32918.5 (sm2p256v1).
CURVE_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
CURVE_A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
CURVE_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
CURVE_GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
CURVE_GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0
CURVE_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123

_SCALAR_SIZE = 32
_PUBLIC_SIZE = 1 + 2 * _SCALAR_SIZE
_SIGNATURE_SIZE = 2 * _SCALAR_SIZE
_UNCOMPRESSED = 0x04
_KEY_CACHE_MAX = 1024
_GENERATE_TRIES_MAX = 64

_CURVE = tongsuo_ec.SM2()
_ALGORITHM = tongsuo_ec.ECDSA(tongsuo_hashes.SM3())
_BYTES_LIKE = (bytes, bytearray, memoryview)
# What a malformed key or signature can raise from inside the library; verify
# turns all of them into False rather than letting a peer's bytes crash us.
_LIBRARY_ERRORS = (
    ValueError,
    TypeError,
    tongsuo_exceptions.InvalidSignature,
    tongsuo_exceptions.InternalError,
)


def _hashlib_sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def _cryptography_sm3(data: bytes) -> bytes:
    digest = crypto_hashes.Hash(crypto_hashes.SM3())
    digest.update(data)
    return digest.finalize()


def _pick_sm3() -> Callable[[bytes], bytes]:
    # hashlib's SM3 is the faster of the two but exists only if the system
    # OpenSSL was built with it; the cryptography wheel always carries SM3.
    return _hashlib_sm3 if "sm3" in hashlib.algorithms_available else _cryptography_sm3


sm3 = _pick_sm3()


def is_valid_private_key(private_key: bytes) -> bool:
    """Whether ``private_key`` is 32 bytes encoding d with 1 <= d <= n-2."""
    if not isinstance(private_key, bytes) or len(private_key) != _SCALAR_SIZE:
        return False
    return 1 <= int.from_bytes(private_key, "big") <= CURVE_N - 2


def is_on_curve(x: int, y: int) -> bool:
    """Whether (x, y) is an affine point of the recommended curve."""
    if not (0 <= x < CURVE_P and 0 <= y < CURVE_P):
        return False
    return (y * y - (x * x * x + CURVE_A * x + CURVE_B)) % CURVE_P == 0


def signature_to_der(signature: bytes) -> bytes:
    """DER of a raw r || s signature; raises CryptoError if r or s is out of range."""
    if len(signature) != _SIGNATURE_SIZE:
        raise CryptoError(f"sm2 signature must be {_SIGNATURE_SIZE} bytes")
    r = int.from_bytes(signature[:_SCALAR_SIZE], "big")
    s = int.from_bytes(signature[_SCALAR_SIZE:], "big")
    if not (0 < r < CURVE_N and 0 < s < CURVE_N):
        raise CryptoError("sm2 signature r and s must be in [1, n-1]")
    return encode_dss_signature(r, s)


def signature_from_der(der: bytes) -> bytes:
    """Raw r || s of a DER signature; raises CryptoError if malformed or out of range."""
    try:
        r, s = decode_dss_signature(der)
    except ValueError:
        raise CryptoError("sm2 signature is not DER") from None
    if not (0 < r < CURVE_N and 0 < s < CURVE_N):
        raise CryptoError("sm2 signature r and s must be in [1, n-1]")
    raw = r.to_bytes(_SCALAR_SIZE, "big") + s.to_bytes(_SCALAR_SIZE, "big")
    if encode_dss_signature(r, s) != der:
        raise CryptoError("sm2 signature is not canonical DER")
    return raw


def user_id_digest(public_key: bytes, user_id: bytes = DEFAULT_USER_ID) -> bytes:
    """Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA), GB/T 32918.2 section 5.5.

    The suite's signatures use the library's own Z; this one lets tests and
    third-party checkers see the value the standard's examples print.
    """
    if len(public_key) != _PUBLIC_SIZE or public_key[0] != _UNCOMPRESSED:
        raise CryptoError(f"sm2 public key must be {_PUBLIC_SIZE} bytes starting 0x04")
    if len(user_id) * 8 > 0xFFFF:
        raise CryptoError("sm2 user id longer than 8191 bytes")
    fields = b"".join(
        v.to_bytes(_SCALAR_SIZE, "big") for v in (CURVE_A, CURVE_B, CURVE_GX, CURVE_GY)
    )
    entl = (len(user_id) * 8).to_bytes(2, "big")
    return sm3(entl + user_id + fields + public_key[1:])


class Sm2Sm3(CryptoSuite):
    name = "sm2-sm3"
    hash_size = 32
    hash_name = "SM3"
    private_key_size = _SCALAR_SIZE
    public_key_size = _PUBLIC_SIZE
    signature_size = _SIGNATURE_SIZE

    def __init__(self) -> None:
        # Building a key object from d costs a scalar multiplication; a node
        # signs with one or two keys, so keep them.
        self._private_cache: dict[bytes, Any] = {}

    def hash(self, data: bytes) -> bytes:
        return sm3(data)

    def generate_private_key(self) -> bytes:
        # Rejection sampling keeps d uniform in [1, n-2]; a retry happens
        # with probability about 2**-32, so the bound is never reached.
        for _ in range(_GENERATE_TRIES_MAX):
            candidate = os.urandom(_SCALAR_SIZE)
            if is_valid_private_key(candidate):
                return candidate
        raise CryptoError("operating system randomness keeps giving out-of-range keys")

    def _private_key_object(self, private_key: bytes) -> Any:
        key = self._private_cache.get(private_key)
        if key is None:
            if not is_valid_private_key(private_key):
                raise CryptoError(
                    f"sm2 private key must be {_SCALAR_SIZE} bytes encoding 1 <= d <= n-2"
                )
            key = tongsuo_ec.derive_private_key(int.from_bytes(private_key, "big"), _CURVE)
            if len(self._private_cache) >= _KEY_CACHE_MAX:
                self._private_cache.clear()
            self._private_cache[private_key] = key
        return key

    def public_key(self, private_key: bytes) -> bytes:
        key = self._private_key_object(private_key)
        encoded: bytes = key.public_key().public_bytes(
            tongsuo_serialization.Encoding.X962,
            tongsuo_serialization.PublicFormat.UncompressedPoint,
        )
        return encoded

    def sign(self, private_key: bytes, message: bytes) -> bytes:
        der: bytes = self._private_key_object(private_key).sign(message, _ALGORITHM)
        return signature_from_der(der)

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        if not all(isinstance(v, _BYTES_LIKE) for v in (public_key, message, signature)):
            return False
        key = _public_key_object(bytes(public_key))
        if key is None:
            return False
        try:
            der = signature_to_der(bytes(signature))
            key.verify(der, bytes(message), _ALGORITHM)
        except (CryptoError, *_LIBRARY_ERRORS):
            return False
        return True

    def is_valid_public_key(self, public_key: bytes) -> bool:
        if not isinstance(public_key, _BYTES_LIKE):
            return False
        return _public_key_object(bytes(public_key)) is not None


def _public_key_object(public_key: bytes) -> Any | None:
    """The library's key for a raw public key, or None if it is not a curve point."""
    if not isinstance(public_key, bytes) or len(public_key) != _PUBLIC_SIZE:
        return None
    if public_key[0] != _UNCOMPRESSED:
        return None
    x = int.from_bytes(public_key[1 : 1 + _SCALAR_SIZE], "big")
    y = int.from_bytes(public_key[1 + _SCALAR_SIZE :], "big")
    # Checked here as well as in the library so that the rule every node
    # applies does not rest on one library version's parser.
    if not is_on_curve(x, y):
        return None
    try:
        return tongsuo_ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, public_key)
    except _LIBRARY_ERRORS:
        return None


__all__ = [
    "CURVE_N",
    "CURVE_P",
    "DEFAULT_USER_ID",
    "Sm2Sm3",
    "is_on_curve",
    "is_valid_private_key",
    "signature_from_der",
    "signature_to_der",
    "sm3",
    "user_id_digest",
]
