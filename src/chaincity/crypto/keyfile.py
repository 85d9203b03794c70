"""Key files: a small JSON document naming the suite, written with mode 0600.

    {"type": "chaincity-private-key", "suite": "ed25519-sha256",
     "private_key": "<hex>", "public_key": "<hex>"}

Loading checks the type, the suite, the sizes and that the public key belongs
to the private key, so a corrupted or mismatched file is refused with a reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from chaincity.crypto import get_suite
from chaincity.crypto.suite import CryptoError, CryptoSuite

KEY_FILE_TYPE = "chaincity-private-key"
KEY_FILE_SIZE_MAX = 4096


@dataclass(frozen=True, slots=True)
class KeyPair:
    suite: CryptoSuite
    private_key: bytes
    public_key: bytes

    def sign(self, message: bytes) -> bytes:
        return self.suite.sign(self.private_key, message)


def generate_key_pair(suite: CryptoSuite) -> KeyPair:
    private_key = suite.generate_private_key()
    return KeyPair(suite, private_key, suite.public_key(private_key))


def key_pair_from_private(suite: CryptoSuite, private_key: bytes) -> KeyPair:
    return KeyPair(suite, private_key, suite.public_key(private_key))


def dump_key_pair(pair: KeyPair) -> bytes:
    doc = {
        "type": KEY_FILE_TYPE,
        "suite": pair.suite.name,
        "private_key": pair.private_key.hex(),
        "public_key": pair.public_key.hex(),
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file readable only by its owner, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    # A stale temporary file may be a symlink planted by someone else; remove
    # it and create afresh, never following links, so the key cannot land in
    # (or clobber) a file chosen by another user.
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def save_key_pair(pair: KeyPair, path: Path) -> None:
    write_private_file(path, dump_key_pair(pair))


def parse_key_pair(data: bytes, source: str = "key file") -> KeyPair:
    """Parse a key file's bytes; raises CryptoError naming ``source`` and the problem."""
    if len(data) > KEY_FILE_SIZE_MAX:
        raise CryptoError(f"{source}: larger than {KEY_FILE_SIZE_MAX} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        # RecursionError: a few kilobytes of "[" nest deeper than the parser's stack.
        raise CryptoError(f"{source}: not a JSON key file ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict) or doc.get("type") != KEY_FILE_TYPE:
        raise CryptoError(f"{source}: not a chaincity private key file")
    suite_name = doc.get("suite")
    if not isinstance(suite_name, str):
        raise CryptoError(f"{source}: missing suite")
    try:
        suite = get_suite(suite_name)
    except CryptoError as exc:
        raise CryptoError(f"{source}: {exc}") from None
    private_key = _hex_field(doc, "private_key", suite.private_key_size, source)
    public_key = _hex_field(doc, "public_key", suite.public_key_size, source)
    try:
        derived = suite.public_key(private_key)
    except CryptoError as exc:
        raise CryptoError(f"{source}: {exc}") from None
    if derived != public_key:
        raise CryptoError(f"{source}: public key does not match the private key")
    return KeyPair(suite, private_key, public_key)


def load_key_pair(path: Path) -> KeyPair:
    try:
        with open(path, "rb") as f:
            data = f.read(KEY_FILE_SIZE_MAX + 1)
    except OSError as exc:
        raise CryptoError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_key_pair(data, str(path))


def _hex_field(doc: dict[str, object], field: str, size: int, source: str) -> bytes:
    value = doc.get(field)
    if not isinstance(value, str):
        raise CryptoError(f"{source}: missing {field}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise CryptoError(f"{source}: {field} is not hex") from None
    if len(raw) != size:
        raise CryptoError(f"{source}: {field} must be {size} bytes, got {len(raw)}")
    return raw
