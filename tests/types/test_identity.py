"""Member certificates: issue, verify, and every reason to reject one."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaincity.codec import CodecError, decode, encode
from chaincity.crypto import get_suite
from chaincity.types.identity import (
    CertBody,
    IdentityError,
    MemberCert,
    cert_digest,
    dump_cert,
    issue_cert,
    parse_cert,
    verify_member_cert,
)

SUITE = get_suite("ed25519-sha256")
BANK_CA = bytes(range(32))
COURT_CA = bytes(range(100, 132))
ALICE = bytes(range(1, 33))
CA_KEYS = {"bank": SUITE.public_key(BANK_CA), "court": SUITE.public_key(COURT_CA)}
NOW_MS = 1_800_000_000_000


def body(**changes: object) -> CertBody:
    base = CertBody(
        "main",
        "alice",
        "bank",
        ("member", "clerk"),
        SUITE.public_key(ALICE),
        NOW_MS - 1000,
        NOW_MS + 1000,
        7,
    )
    return msgspec.structs.replace(base, **changes)


def verify(
    cert: MemberCert,
    now_ms: int = NOW_MS,
    revoked: frozenset[tuple[str, int]] = frozenset(),
    role: str | None = None,
    network_id: str = "main",
) -> None:
    verify_member_cert(SUITE, cert, CA_KEYS, now_ms, revoked, role, network_id)


def rejection(cert: MemberCert, **kwargs: object) -> str:
    with pytest.raises(IdentityError) as info:
        verify(cert, **kwargs)  # type: ignore[arg-type]
    return info.value.kind


def test_a_good_certificate_verifies_with_and_without_a_role() -> None:
    cert = issue_cert(SUITE, BANK_CA, body())
    verify(cert)
    verify(cert, role="clerk")


def test_window_edges_are_inclusive() -> None:
    cert = issue_cert(SUITE, BANK_CA, body())
    verify(cert, now_ms=NOW_MS - 1000)
    verify(cert, now_ms=NOW_MS + 1000)
    assert rejection(cert, now_ms=NOW_MS + 1001) == "expired"
    assert rejection(cert, now_ms=NOW_MS - 1001) == "not-yet-valid"


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "mallory"},
        {"roles": ("member", "admin")},
        {"public_key": SUITE.public_key(COURT_CA)},
        {"not_after_ms": NOW_MS + 10**9},
        {"serial": 8},
    ],
)
def test_a_tampered_field_breaks_the_signature(change: dict[str, object]) -> None:
    cert = issue_cert(SUITE, BANK_CA, body())
    tampered = MemberCert(msgspec.structs.replace(cert.body, **change), cert.signature)
    assert rejection(tampered) == "bad-signature"


def test_a_tampered_signature_is_rejected() -> None:
    cert = issue_cert(SUITE, BANK_CA, body())
    sig = bytearray(cert.signature)
    sig[10] ^= 1
    assert rejection(MemberCert(cert.body, bytes(sig))) == "bad-signature"


def test_wrong_ca_is_rejected() -> None:
    # Signed by the court's CA but claiming to be a bank member.
    assert rejection(issue_cert(SUITE, COURT_CA, body())) == "bad-signature"
    # A CA no one in the network knows.
    stranger = issue_cert(SUITE, bytes(range(50, 82)), body(org="stranger"))
    assert rejection(stranger) == "unknown-org"


def test_a_revoked_serial_is_rejected_only_for_its_org() -> None:
    cert = issue_cert(SUITE, BANK_CA, body())
    assert rejection(cert, revoked=frozenset({("bank", 7)})) == "revoked"
    verify(cert, revoked=frozenset({("court", 7), ("bank", 8)}))


def test_a_missing_role_is_rejected() -> None:
    assert rejection(issue_cert(SUITE, BANK_CA, body()), role="admin") == "missing-role"


def test_another_network_is_rejected() -> None:
    cert = issue_cert(SUITE, BANK_CA, body(network_id="test"))
    assert rejection(cert) == "wrong-network"
    verify(cert, network_id="test")


@pytest.mark.parametrize(
    "change",
    [
        {"public_key": b"\x01" * 31},
        {"not_before_ms": NOW_MS + 5, "not_after_ms": NOW_MS},
        {"roles": ("member", "member")},
        {"subject": ""},
        {"serial": -1},
    ],
)
def test_malformed_certificates_are_rejected_before_the_signature(
    change: dict[str, object],
) -> None:
    cert = issue_cert(SUITE, BANK_CA, body())
    assert rejection(MemberCert(msgspec.structs.replace(cert.body, **change), b"")) == "malformed"


def test_digest_changes_with_the_signature_and_the_body() -> None:
    cert = issue_cert(SUITE, BANK_CA, body())
    assert cert_digest(SUITE, cert) == cert_digest(SUITE, issue_cert(SUITE, BANK_CA, body()))
    assert cert_digest(SUITE, cert) != cert_digest(
        SUITE, issue_cert(SUITE, BANK_CA, body(serial=8))
    )


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_flipped_byte_is_refused(data: st.DataObject) -> None:
    raw = bytearray(encode(issue_cert(SUITE, BANK_CA, body())))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    try:
        cert = decode(bytes(raw), MemberCert)
    except (CodecError, UnicodeDecodeError):  # a flipped text byte may break UTF-8
        return
    with pytest.raises(IdentityError):
        verify(cert)


# -- the JSON file --------------------------------------------------------------


def test_file_round_trip_keeps_the_certificate_and_suite() -> None:
    cert = issue_cert(SUITE, BANK_CA, body())
    parsed, suite_name = parse_cert(dump_cert(cert, SUITE.name), "alice.cert")
    assert parsed == cert
    assert suite_name == SUITE.name
    verify(parsed)


def _doc(**changes: object) -> bytes:
    doc = json.loads(dump_cert(issue_cert(SUITE, BANK_CA, body()), SUITE.name))
    doc.update(changes)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"not json", "malformed"),
        (b"[]", "Expected `object`"),
        (_doc(type="something-else"), "not a chaincity member certificate"),
        (_doc(extra=1), "unknown field"),
        (_doc(public_key="zz"), "public_key is not hex"),
        (_doc(serial=2**70), "serial"),
        (_doc(serial="7"), "Expected `int`"),
        (_doc(roles=["r"] * 17), "$.roles"),
        (b'{"type": "\xff"}', "malformed"),
        (_doc(network_id="Main Net"), "$.network_id"),
        (b" " * 9000, "larger than"),
    ],
)
def test_malformed_files_are_refused_with_the_file_name(data: bytes, problem: str) -> None:
    with pytest.raises(IdentityError) as info:
        parse_cert(data, "alice.cert")
    assert info.value.reason.startswith("alice.cert: ")
    assert problem in info.value.reason or problem == info.value.kind
    assert "\n" not in info.value.reason
