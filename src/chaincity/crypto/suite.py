"""The one interface every part of chaincity uses for hashing and signatures.

A network picks a suite at genesis; nothing outside this package knows which.
Keys and signatures travel as raw bytes of a fixed size per suite, so that the
canonical encoding of a signed object never depends on an ASN.1 library.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol


class CryptoError(Exception):
    """A key, signature or key file is malformed (the input's fault, not ours)."""


class HashState(Protocol):
    """What a hash constructor returns (a hashlib object, for instance)."""

    def digest(self) -> bytes: ...


class CryptoSuite(ABC):
    """A hash function, a signature scheme and their key encodings."""

    name: str
    hash_size: int
    private_key_size: int
    public_key_size: int
    signature_size: int
    # Optional: a constructor implemented in C whose ``ctor(data).digest()`` is
    # ``hash(data)`` (e.g. hashlib.sha256). Native loops that hash millions of
    # times call it without a Python frame; None means they call ``hash``. Set
    # it on the instance: a Python function set on the class would bind as a method.
    hash_constructor: Callable[[bytes], HashState] | None = None
    # Optional: the name OpenSSL knows ``hash`` by ("SHA256", "SM3"), so native code
    # built against OpenSSL can hash with it directly. Native code compares the two
    # on a probe before it relies on the name.
    hash_name: str | None = None

    @abstractmethod
    def hash(self, data: bytes) -> bytes:
        """The suite's hash of ``data``."""

    def tagged_hash(self, tag: bytes, data: bytes) -> bytes:
        """Hash of ``data`` under a domain tag; the tag is length-prefixed so no
        two (tag, data) pairs give the same preimage."""
        if not 0 < len(tag) < 256:
            raise ValueError("domain tag must be 1..255 bytes")
        return self.hash(bytes((len(tag),)) + tag + data)

    @abstractmethod
    def generate_private_key(self) -> bytes:
        """A fresh private key from the operating system's randomness."""

    @abstractmethod
    def public_key(self, private_key: bytes) -> bytes:
        """The public key of ``private_key``; raises CryptoError if malformed."""

    @abstractmethod
    def sign(self, private_key: bytes, message: bytes) -> bytes:
        """A signature of ``message``; raises CryptoError if the key is malformed."""

    @abstractmethod
    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """True only for a valid signature; never raises on malformed input."""

    def is_valid_public_key(self, public_key: bytes) -> bool:
        """Whether ``public_key`` is a well-formed key of this suite."""
        return len(public_key) == self.public_key_size

    def __repr__(self) -> str:
        return f"<CryptoSuite {self.name}>"
