"""Key files: both suites round-trip, files are private to their owner, and every
malformed, mismatched or oversized file is refused with a message naming it."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from chaincity.crypto import SUITE_NAMES, CryptoError, get_suite
from chaincity.crypto.keyfile import (
    KEY_FILE_SIZE_MAX,
    KEY_FILE_TYPE,
    dump_key_pair,
    generate_key_pair,
    load_key_pair,
    parse_key_pair,
    save_key_pair,
)
from chaincity.crypto.sm2 import CURVE_N


def _doc(suite_name: str) -> dict[str, str]:
    pair = generate_key_pair(get_suite(suite_name))
    loaded: dict[str, str] = json.loads(dump_key_pair(pair))
    return loaded


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("suite_name", SUITE_NAMES)
def test_save_and_load_round_trip(tmp_path: Path, suite_name: str) -> None:
    pair = generate_key_pair(get_suite(suite_name))
    path = tmp_path / "node.key"
    save_key_pair(pair, path)
    loaded = load_key_pair(path)
    assert loaded.suite.name == suite_name
    assert (loaded.private_key, loaded.public_key) == (pair.private_key, pair.public_key)
    signature = loaded.sign(b"hello")
    assert pair.suite.verify(pair.public_key, b"hello", signature)


@pytest.mark.parametrize("suite_name", SUITE_NAMES)
def test_file_mode_is_0600_even_when_replacing(tmp_path: Path, suite_name: str) -> None:
    path = _write(tmp_path / "node.key", b"old")
    path.chmod(0o644)
    save_key_pair(generate_key_pair(get_suite(suite_name)), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (tmp_path / "node.key.tmp").exists()


def test_stale_temporary_symlink_is_not_followed(tmp_path: Path) -> None:
    victim = _write(tmp_path / "victim.txt", b"keep me")
    victim.chmod(0o644)
    (tmp_path / "node.key.tmp").symlink_to(victim)
    pair = generate_key_pair(get_suite("ed25519-sha256"))
    path = tmp_path / "node.key"
    save_key_pair(pair, path)
    assert victim.read_bytes() == b"keep me"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert not path.is_symlink()
    assert load_key_pair(path).private_key == pair.private_key


def test_file_format_is_the_documented_json(tmp_path: Path) -> None:
    pair = generate_key_pair(get_suite("sm2-sm3"))
    path = tmp_path / "node.key"
    save_key_pair(pair, path)
    doc = json.loads(path.read_bytes())
    assert doc == {
        "type": KEY_FILE_TYPE,
        "suite": "sm2-sm3",
        "private_key": pair.private_key.hex(),
        "public_key": pair.public_key.hex(),
    }


def _mutated(suite_name: str, **changes: object) -> bytes:
    doc: dict[str, object] = dict(_doc(suite_name))
    for field, value in changes.items():
        if value is None:
            doc.pop(field)
        else:
            doc[field] = value
    return json.dumps(doc).encode()


BAD_FILES: dict[str, tuple[bytes, str]] = {
    "not-json": (b"private_key = 12", "not a JSON key file"),
    "not-utf8": (b"\xff\xfe\xfa", "not a JSON key file"),
    "deep-nesting": (b"[" * 4000, "not a JSON key file"),
    "json-list": (b"[1, 2]", "not a chaincity private key file"),
    "wrong-type": (_mutated("ed25519-sha256", type="ssh-key"), "not a chaincity private key"),
    "no-suite": (_mutated("ed25519-sha256", suite=None), "missing suite"),
    "suite-not-text": (_mutated("ed25519-sha256", suite=["sm2-sm3"]), "missing suite"),
    "unknown-suite": (_mutated("ed25519-sha256", suite="rsa-md5"), "unknown crypto suite"),
    "no-private": (_mutated("sm2-sm3", private_key=None), "missing private_key"),
    "private-not-hex": (_mutated("sm2-sm3", private_key="zz" * 32), "private_key is not hex"),
    "private-short": (_mutated("sm2-sm3", private_key="01" * 31), "private_key must be 32"),
    "public-short": (_mutated("sm2-sm3", public_key="04" * 64), "public_key must be 65"),
    "sm2-private-n-minus-1": (
        _mutated("sm2-sm3", private_key=(CURVE_N - 1).to_bytes(32, "big").hex()),
        "1 <= d <= n-2",
    ),
    "mismatched": (
        _mutated("ed25519-sha256", public_key=_doc("ed25519-sha256")["public_key"]),
        "does not match",
    ),
    "suite-swapped": (
        _mutated("ed25519-sha256", suite="sm2-sm3"),
        "public_key must be 65",
    ),
    "oversized": (b" " * (KEY_FILE_SIZE_MAX + 1), f"larger than {KEY_FILE_SIZE_MAX}"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_are_refused_naming_the_file(tmp_path: Path, name: str) -> None:
    data, reason = BAD_FILES[name]
    path = _write(tmp_path / f"{name}.key", data)
    with pytest.raises(CryptoError) as raised:
        load_key_pair(path)
    message = str(raised.value)
    assert message.startswith(str(path)), message
    assert reason in message, message


def test_missing_file_and_directory_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CryptoError, match="cannot read"):
        load_key_pair(tmp_path / "absent.key")
    with pytest.raises(CryptoError, match="cannot read"):
        load_key_pair(tmp_path)


def test_huge_file_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.key"
    with open(path, "wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: cheap to make, costly to slurp
    with pytest.raises(CryptoError, match="larger than"):
        load_key_pair(path)


def test_parse_names_its_source() -> None:
    with pytest.raises(CryptoError, match=r"^peer upload: not a JSON key file"):
        parse_key_pair(b"{", "peer upload")
