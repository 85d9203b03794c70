"""SM2 suite: the GB/T 32918.5 example on the recommended curve, a signature
made by OpenSSL, live interoperability with the ``openssl`` command in both
directions, and the rules for malformed keys and signatures."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaincity.crypto import CryptoError, get_suite
from chaincity.crypto.sm2 import (
    CURVE_N,
    CURVE_P,
    DEFAULT_USER_ID,
    Sm2Sm3,
    signature_from_der,
    signature_to_der,
    sm3,
    user_id_digest,
)

# GB/T 32918.5-2017 (GM/T 0003.5-2012) Appendix A: signature on the recommended
# curve with ID "1234567812345678" and message "message digest".
GBT_PRIVATE = "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8"
GBT_PUBLIC = (
    "04"
    "09f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020"
    "ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13"
)
GBT_MESSAGE = b"message digest"
GBT_Z = "b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3"
GBT_E = "f0b43e94ba45accaace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640"
GBT_SIGNATURE = (
    "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3"
    "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa"
)

# Made by OpenSSL 3.0.19: `openssl genpkey -algorithm SM2`, then
# `openssl pkeyutl -sign -rawin -digest sm3 -pkeyopt distid:1234567812345678`.
OPENSSL_PRIVATE = "ee66c9590df08a91a35277f522e88a59445662c959fb934e84d0fcda5fd2c29c"
OPENSSL_PUBLIC = (
    "04"
    "811ea7bab6fc13556e6b79261256a58606ab949ba95e23f30a0ee68a8ff8f574"
    "ee3b56791d7abd15200754f6a42fc80a598566247de33b53fdd70b5b7e14aee9"
)
OPENSSL_MESSAGE = b"chaincity/openssl-interop"
OPENSSL_SIGNATURE = (
    "f748e19ffa884c1e1a0418192cee4e2e7d14b49565a30d4a889994a391e2422e"
    "a7258da66cd58bf34fa4233d04c61160b3f26c8717de7034e8d639db0d1679af"
)

OPENSSL_TIMEOUT_S = 20


@pytest.fixture(scope="module")
def suite() -> Sm2Sm3:
    return Sm2Sm3()


# --- published and recorded vectors ------------------------------------------


def test_gbt32918_public_key_from_private(suite: Sm2Sm3) -> None:
    assert suite.public_key(bytes.fromhex(GBT_PRIVATE)).hex() == GBT_PUBLIC


def test_gbt32918_user_id_digest_and_message_digest() -> None:
    z = user_id_digest(bytes.fromhex(GBT_PUBLIC), DEFAULT_USER_ID)
    assert z.hex() == GBT_Z
    assert sm3(z + GBT_MESSAGE).hex() == GBT_E
    assert user_id_digest(bytes.fromhex(GBT_PUBLIC), b"ALICE123@YAHOO.COM") != z


def test_gbt32918_signature_verifies(suite: Sm2Sm3) -> None:
    public, signature = bytes.fromhex(GBT_PUBLIC), bytes.fromhex(GBT_SIGNATURE)
    assert suite.verify(public, GBT_MESSAGE, signature)
    assert not suite.verify(public, GBT_MESSAGE + b".", signature)
    assert not suite.verify(bytes.fromhex(OPENSSL_PUBLIC), GBT_MESSAGE, signature)


def test_openssl_signature_verifies(suite: Sm2Sm3) -> None:
    assert suite.public_key(bytes.fromhex(OPENSSL_PRIVATE)).hex() == OPENSSL_PUBLIC
    public, signature = bytes.fromhex(OPENSSL_PUBLIC), bytes.fromhex(OPENSSL_SIGNATURE)
    assert suite.verify(public, OPENSSL_MESSAGE, signature)
    assert not suite.verify(public, OPENSSL_MESSAGE[:-1], signature)


@pytest.mark.parametrize("position", [0, 31, 32, 63])
def test_flipped_signature_bit_is_rejected(suite: Sm2Sm3, position: int) -> None:
    damaged = bytearray.fromhex(GBT_SIGNATURE)
    damaged[position] ^= 0x01
    assert not suite.verify(bytes.fromhex(GBT_PUBLIC), GBT_MESSAGE, bytes(damaged))


# --- live interoperability with the openssl command ---------------------------


def _openssl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    binary = shutil.which("openssl")
    assert binary is not None, "the openssl command is needed for the SM2 interop tests"
    return subprocess.run(
        [binary, *args], input=data, capture_output=True, timeout=OPENSSL_TIMEOUT_S, check=False
    )


def _openssl_key(tmp_path: Path) -> tuple[Path, Path, bytes, bytes]:
    """A fresh SM2 key from openssl: (private PEM, public PEM, raw d, raw public key)."""
    key_pem, pub_pem = tmp_path / "key.pem", tmp_path / "pub.pem"
    assert _openssl("genpkey", "-algorithm", "SM2", "-out", str(key_pem)).returncode == 0
    assert _openssl("pkey", "-in", str(key_pem), "-pubout", "-out", str(pub_pem)).returncode == 0
    text = _openssl("pkey", "-in", str(key_pem), "-text", "-noout").stdout.decode()
    found = re.search(r"priv:\s*([0-9a-f:\s]+?)\s*pub:\s*([0-9a-f:\s]+?)\s*ASN1", text)
    assert found is not None, text
    d = int(re.sub(r"[^0-9a-f]", "", found.group(1)), 16).to_bytes(32, "big")
    public = bytes.fromhex(re.sub(r"[^0-9a-f]", "", found.group(2)))
    return key_pem, pub_pem, d, public


def test_openssl_verifies_our_signature(suite: Sm2Sm3, tmp_path: Path) -> None:
    _, pub_pem, d, public = _openssl_key(tmp_path)
    assert suite.public_key(d) == public
    message = b"chaincity/tx/v1 signed by chaincity"
    (tmp_path / "msg").write_bytes(message)
    (tmp_path / "sig").write_bytes(signature_to_der(suite.sign(d, message)))
    common = ["-pubin", "-inkey", str(pub_pem), "-rawin", "-digest", "sm3"]
    common += ["-sigfile", str(tmp_path / "sig"), "-in", str(tmp_path / "msg")]
    good = _openssl("pkeyutl", "-verify", *common, "-pkeyopt", "distid:1234567812345678")
    assert good.returncode == 0, good.stderr
    assert b"Verified Successfully" in good.stdout
    wrong_id = _openssl("pkeyutl", "-verify", *common, "-pkeyopt", "distid:chaincity")
    assert wrong_id.returncode != 0


def test_we_verify_openssl_signature(suite: Sm2Sm3, tmp_path: Path) -> None:
    key_pem, _, _, public = _openssl_key(tmp_path)
    message = b"chaincity/vote/v1 signed by openssl"
    (tmp_path / "msg").write_bytes(message)
    signed = _openssl(
        "pkeyutl", "-sign", "-inkey", str(key_pem), "-rawin", "-digest", "sm3",
        "-pkeyopt", "distid:1234567812345678", "-in", str(tmp_path / "msg"),
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    signature = signature_from_der(signed.stdout)
    assert suite.verify(public, message, signature)
    assert not suite.verify(public, message + b"!", signature)


# --- malformed input ----------------------------------------------------------


def _point_with_prefix(prefix: int) -> bytes:
    return bytes((prefix,)) + bytes.fromhex(GBT_PUBLIC)[1:]


BAD_PUBLIC_KEYS = {
    "empty": b"",
    "raw-xy-64": bytes.fromhex(GBT_PUBLIC)[1:],
    "66-bytes": bytes.fromhex(GBT_PUBLIC) + b"\x00",
    "compressed-33": b"\x02" + bytes.fromhex(GBT_PUBLIC)[1:33],
    "prefix-02": _point_with_prefix(0x02),
    "prefix-06-hybrid": _point_with_prefix(0x06),
    "prefix-07-hybrid": _point_with_prefix(0x07),
    "prefix-00": _point_with_prefix(0x00),
    "infinity-zeros": b"\x04" + bytes(64),
    "off-curve": bytes.fromhex(GBT_PUBLIC)[:-1] + b"\x14",
    "x-is-p": b"\x04" + CURVE_P.to_bytes(32, "big") + bytes.fromhex(GBT_PUBLIC)[33:],
    "all-ff": b"\x04" + b"\xff" * 64,
}


@pytest.mark.parametrize("name", sorted(BAD_PUBLIC_KEYS))
def test_bad_public_keys_are_invalid(suite: Sm2Sm3, name: str) -> None:
    key = BAD_PUBLIC_KEYS[name]
    assert not suite.is_valid_public_key(key)
    assert not suite.verify(key, GBT_MESSAGE, bytes.fromhex(GBT_SIGNATURE))


def _signature(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


GBT_R = int(GBT_SIGNATURE[:64], 16)
GBT_S = int(GBT_SIGNATURE[64:], 16)
BAD_SIGNATURES = {
    "empty": b"",
    "63-bytes": bytes.fromhex(GBT_SIGNATURE)[:-1],
    "65-bytes": bytes.fromhex(GBT_SIGNATURE) + b"\x00",
    "der": signature_to_der(bytes.fromhex(GBT_SIGNATURE)),
    "r-zero": _signature(0, GBT_S),
    "s-zero": _signature(GBT_R, 0),
    "r-is-n": _signature(CURVE_N, GBT_S),
    "s-is-n": _signature(GBT_R, CURVE_N),
    "s-minus-n": _signature(GBT_R, CURVE_N - GBT_S),
    "all-ff": b"\xff" * 64,
}


@pytest.mark.parametrize("name", sorted(BAD_SIGNATURES))
def test_bad_signatures_are_rejected(suite: Sm2Sm3, name: str) -> None:
    assert not suite.verify(bytes.fromhex(GBT_PUBLIC), GBT_MESSAGE, BAD_SIGNATURES[name])


@pytest.mark.parametrize(
    "value",
    [0, CURVE_N - 1, CURVE_N, CURVE_N + 1, 2**256 - 1],
    ids=["zero", "n-1", "n", "n+1", "max"],
)
def test_out_of_range_private_keys_raise(suite: Sm2Sm3, value: int) -> None:
    # n-1 matters most: 1+d has no inverse and the library would never return.
    key = value.to_bytes(32, "big")
    with pytest.raises(CryptoError, match="1 <= d <= n-2"):
        suite.public_key(key)
    with pytest.raises(CryptoError):
        suite.sign(key, b"message")


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_wrong_size_private_keys_raise(suite: Sm2Sm3, size: int) -> None:
    with pytest.raises(CryptoError):
        suite.public_key(b"\x01" * size)


def test_largest_private_key_works(suite: Sm2Sm3) -> None:
    key = (CURVE_N - 2).to_bytes(32, "big")
    public = suite.public_key(key)
    assert suite.verify(public, b"edge", suite.sign(key, b"edge"))


def test_der_helpers_reject_malformed_input() -> None:
    raw = bytes.fromhex(GBT_SIGNATURE)
    der = signature_to_der(raw)
    assert signature_from_der(der) == raw
    with pytest.raises(CryptoError, match="not DER"):
        signature_from_der(b"\x30\x00garbage")
    # The same integers with a superfluous leading zero are not canonical DER.
    padded = b"\x30\x47\x02\x22\x00" + der[4:]
    with pytest.raises(CryptoError):
        signature_from_der(padded)
    with pytest.raises(CryptoError, match=r"\[1, n-1\]"):
        signature_to_der(_signature(0, 1))
    with pytest.raises(CryptoError, match="64 bytes"):
        signature_to_der(raw[:-1])


def test_bytes_like_inputs_and_wrong_types(suite: Sm2Sm3) -> None:
    public, signature = bytes.fromhex(GBT_PUBLIC), bytes.fromhex(GBT_SIGNATURE)
    assert suite.verify(bytearray(public), memoryview(GBT_MESSAGE), bytearray(signature))
    assert suite.is_valid_public_key(memoryview(public))
    for wrong in (None, GBT_PUBLIC, 12):
        assert not suite.verify(wrong, GBT_MESSAGE, signature)  # type: ignore[arg-type]
        assert not suite.verify(public, GBT_MESSAGE, wrong)  # type: ignore[arg-type]
        assert not suite.is_valid_public_key(wrong)  # type: ignore[arg-type]
    assert not suite.verify(public, GBT_MESSAGE.decode(), signature)  # type: ignore[arg-type]


# --- round trips ----------------------------------------------------------------


def test_registry_and_sizes() -> None:
    suite = get_suite("sm2-sm3")
    assert isinstance(suite, Sm2Sm3)
    assert suite.name == "sm2-sm3"
    assert (suite.private_key_size, suite.public_key_size, suite.signature_size) == (32, 65, 64)


def test_generated_keys_sign_and_verify(suite: Sm2Sm3) -> None:
    keys = {suite.generate_private_key() for _ in range(4)}
    assert len(keys) == 4
    for key in keys:
        public = suite.public_key(key)
        assert suite.is_valid_public_key(public)
        first, second = suite.sign(key, b"m"), suite.sign(key, b"m")
        assert first != second  # a fresh k per signature
        assert suite.verify(public, b"m", first)
        assert suite.verify(public, b"m", second)


@settings(max_examples=40, deadline=None)
@given(message=st.binary(max_size=1024), position=st.integers(0, 63))
def test_round_trip_and_bit_flip(message: bytes, position: int) -> None:
    suite = get_suite("sm2-sm3")
    key = bytes.fromhex(OPENSSL_PRIVATE)
    public = bytes.fromhex(OPENSSL_PUBLIC)
    signature = suite.sign(key, message)
    assert len(signature) == 64
    assert suite.verify(public, message, signature)
    damaged = bytearray(signature)
    damaged[position] ^= 0x01
    assert not suite.verify(public, message, bytes(damaged))
    assert not suite.verify(public, message + b"\x00", signature)


@settings(max_examples=150, deadline=None)
@given(
    public=st.one_of(
        st.binary(max_size=70),
        st.binary(min_size=64, max_size=64).map(lambda b: b"\x04" + b),
    ),
    signature=st.binary(max_size=72),
)
def test_verify_never_raises(public: bytes, signature: bytes) -> None:
    suite = get_suite("sm2-sm3")
    assert suite.verify(public, b"m", signature) in (True, False)
    assert suite.is_valid_public_key(public) in (True, False)
