"""Crypto suites: hashing, signatures and key files, behind one interface."""

from __future__ import annotations

from chaincity.crypto.ed25519 import Ed25519Sha256
from chaincity.crypto.suite import CryptoError, CryptoSuite

DEFAULT_SUITE = "ed25519-sha256"

_SUITES: dict[str, CryptoSuite] = {}


def _load(name: str) -> CryptoSuite:
    if name == "ed25519-sha256":
        return Ed25519Sha256()
    if name == "sm2-sm3":
        from chaincity.crypto.sm2 import Sm2Sm3

        return Sm2Sm3()
    raise CryptoError(f"unknown crypto suite {name!r} (known: {', '.join(SUITE_NAMES)})")


SUITE_NAMES: tuple[str, ...] = ("ed25519-sha256", "sm2-sm3")


def get_suite(name: str) -> CryptoSuite:
    """The suite called ``name``; raises CryptoError for an unknown name."""
    suite = _SUITES.get(name)
    if suite is None:
        suite = _load(name)
        _SUITES[name] = suite
    return suite


__all__ = ["DEFAULT_SUITE", "SUITE_NAMES", "CryptoError", "CryptoSuite", "get_suite"]
