"""The default suite: Ed25519 signatures (RFC 8032) and SHA-256.

Consensus-critical verification is pinned to libsodium through PyNaCl's raw
bindings (the fastest verifier measured on our machines). Its rules for the
edge cases, which every node must share, are:

- a signature whose S is not reduced modulo the group order is rejected;
- a public key or R of small order, or a non-canonical encoding of either,
  is rejected;
- verification is the cofactorless equation [S]B = R + [k]A.

These are libsodium's rules since 1.0.16; PyNaCl bundles a recent libsodium,
so every node that installs the same PyNaCl shares them.
"""

from __future__ import annotations

import hashlib
import os

from nacl import bindings
from nacl.exceptions import BadSignatureError
from nacl.exceptions import CryptoError as NaclCryptoError

from chaincity.crypto.suite import CryptoError, CryptoSuite

_SEED_SIZE = 32
_PUBLIC_SIZE = 32
_SIGNATURE_SIZE = 64


class Ed25519Sha256(CryptoSuite):
    name = "ed25519-sha256"
    hash_size = 32
    hash_name = "SHA256"
    private_key_size = _SEED_SIZE
    public_key_size = _PUBLIC_SIZE
    signature_size = _SIGNATURE_SIZE

    def __init__(self) -> None:
        # libsodium wants the 64-byte expanded secret key; derive it once per seed.
        self._secret_cache: dict[bytes, bytes] = {}
        self.hash_constructor = hashlib.sha256

    def hash(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def generate_private_key(self) -> bytes:
        return os.urandom(_SEED_SIZE)

    def _secret_key(self, private_key: bytes) -> bytes:
        secret = self._secret_cache.get(private_key)
        if secret is None:
            if len(private_key) != _SEED_SIZE:
                raise CryptoError(f"ed25519 private key must be {_SEED_SIZE} bytes")
            _, secret = bindings.crypto_sign_seed_keypair(private_key)
            if len(self._secret_cache) > 1024:
                self._secret_cache.clear()
            self._secret_cache[private_key] = secret
        return secret

    def public_key(self, private_key: bytes) -> bytes:
        return self._secret_key(private_key)[_SEED_SIZE:]

    def sign(self, private_key: bytes, message: bytes) -> bytes:
        signed: bytes = bindings.crypto_sign(message, self._secret_key(private_key))
        return signed[:_SIGNATURE_SIZE]

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        if len(public_key) != _PUBLIC_SIZE or len(signature) != _SIGNATURE_SIZE:
            return False
        try:
            bindings.crypto_sign_open(signature + message, public_key)
        except (BadSignatureError, NaclCryptoError, ValueError, TypeError):
            return False
        return True

    def is_valid_public_key(self, public_key: bytes) -> bool:
        if len(public_key) != _PUBLIC_SIZE:
            return False
        try:
            # Rejects non-canonical encodings and points of small order.
            bindings.crypto_sign_ed25519_pk_to_curve25519(public_key)
        except (NaclCryptoError, ValueError, TypeError):
            return False
        return True
