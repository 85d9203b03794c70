"""Organizations and member certificates.

Each organization has a CA key. A member certificate binds a subject, an
organization, roles, a public key, a validity window and a serial, signed by
the organization's CA in the network's suite. (DESIGN.md places certificates
with crypto; they live here because their signed bytes come from the codec,
which sits above crypto.)

Verification is a pure function of its inputs: the caller passes the time and
the revoked serials, so the mempool and execution can use it on any node and
get the same answer.
"""

from __future__ import annotations

import json
from collections.abc import Container, Mapping
from typing import Annotated

import msgspec
from msgspec import Meta

from chaincity.codec import Tag, decode, encode, tagged
from chaincity.crypto import CryptoSuite
from chaincity.types.primitives import (
    PUBLIC_KEY_SIZE_MAX,
    ROLES_MAX,
    SIGNATURE_SIZE_MAX,
    U64,
    ChainIdField,
    Name,
    PublicKeyBytes,
    SignatureBytes,
)

Roles = Annotated[tuple[Name, ...], Meta(max_length=ROLES_MAX)]

ROLE_ADMIN = "admin"
ROLE_MEMBER = "member"
ROLE_VALIDATOR = "validator"

CERT_FILE_TYPE = "chaincity-member-cert"
CERT_FILE_SIZE_MAX = 8192


class CertBody(msgspec.Struct, array_like=True, frozen=True, gc=False):
    network_id: ChainIdField
    subject: Name
    org: Name
    roles: Roles
    public_key: PublicKeyBytes
    not_before_ms: U64
    not_after_ms: U64
    serial: U64


class MemberCert(msgspec.Struct, array_like=True, frozen=True, gc=False):
    body: CertBody
    signature: SignatureBytes

    def signing_bytes(self) -> bytes:
        return signing_bytes(self.body)


class IdentityError(Exception):
    """A certificate is not acceptable; ``kind`` is a stable short code for the
    reason (for receipts, API errors and metrics) and ``reason`` the sentence."""

    def __init__(self, kind: str, reason: str) -> None:
        # Reasons quote hostile input; keep them on one printable line.
        reason = "".join(c if c.isprintable() else repr(c)[1:-1] for c in reason)
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def signing_bytes(body: CertBody) -> bytes:
    return tagged(Tag.CERT, encode(body))


def issue_cert(suite: CryptoSuite, ca_private_key: bytes, body: CertBody) -> MemberCert:
    return MemberCert(body, suite.sign(ca_private_key, signing_bytes(body)))


def cert_digest(suite: CryptoSuite, cert: MemberCert) -> bytes:
    return suite.tagged_hash(Tag.CERT, encode(cert))


def verify_member_cert(
    suite: CryptoSuite,
    cert: MemberCert,
    ca_keys: Mapping[str, bytes],
    now_ms: int,
    revoked_serials: Container[tuple[str, int]],
    required_role: str | None = None,
    network_id: str = "main",
) -> None:
    """Raise IdentityError unless ``cert`` is acceptable at ``now_ms``.

    ``ca_keys`` maps each organization to its CA public key (from genesis or
    governance state); ``revoked_serials`` holds (org, serial) pairs, since
    serials are unique only within the organization that issued them. The
    cheap checks come first and the signature is checked before the window,
    revocation and roles, so a forged certificate always reads as forged.
    """
    body = cert.body
    check_cert_form(suite, cert)
    if body.network_id != network_id:
        raise IdentityError(
            "wrong-network", f"certificate is for network {body.network_id!r}, not {network_id!r}"
        )
    ca_key = ca_keys.get(body.org)
    if ca_key is None:
        raise IdentityError("unknown-org", f"certificate names unknown organization {body.org!r}")
    if not suite.verify(ca_key, signing_bytes(body), cert.signature):
        raise IdentityError(
            "bad-signature", f"certificate signature does not verify under {body.org}'s CA key"
        )
    check_cert_status(cert, now_ms, revoked_serials, required_role)


def check_cert_form(suite: CryptoSuite, cert: MemberCert) -> None:
    """The bounds the codec checks on decode, for certificates built in memory."""
    try:
        decode(encode(cert), MemberCert)
    except (ValueError, TypeError, OverflowError, msgspec.EncodeError) as exc:
        raise IdentityError("malformed", f"malformed certificate: {exc}") from None
    body = cert.body
    if not suite.is_valid_public_key(body.public_key):
        raise IdentityError("malformed", f"certificate public key is not a valid {suite.name} key")
    if body.not_before_ms > body.not_after_ms:
        raise IdentityError("malformed", "certificate validity window is empty")
    if len(set(body.roles)) != len(body.roles):
        raise IdentityError("malformed", "certificate lists a role twice")


def check_cert_status(
    cert: MemberCert,
    now_ms: int,
    revoked_serials: Container[tuple[str, int]],
    required_role: str | None,
) -> None:
    """Validity window, revocation and role; the signature is checked elsewhere."""
    body = cert.body
    if now_ms < body.not_before_ms:
        raise IdentityError(
            "not-yet-valid", f"certificate is not valid before {body.not_before_ms} ms"
        )
    if now_ms > body.not_after_ms:
        raise IdentityError("expired", f"certificate expired at {body.not_after_ms} ms")
    if (body.org, body.serial) in revoked_serials:
        raise IdentityError("revoked", f"certificate serial {body.serial} of {body.org} is revoked")
    if required_role is not None and required_role not in body.roles:
        raise IdentityError(
            "missing-role", f"certificate of {body.subject!r} lacks role {required_role!r}"
        )


def dump_cert(cert: MemberCert, suite_name: str) -> bytes:
    """A certificate as a readable JSON document (keys and signature in hex)."""
    body = cert.body
    doc = {
        "type": CERT_FILE_TYPE,
        "suite": suite_name,
        "network_id": body.network_id,
        "subject": body.subject,
        "org": body.org,
        "roles": list(body.roles),
        "public_key": body.public_key.hex(),
        "not_before_ms": body.not_before_ms,
        "not_after_ms": body.not_after_ms,
        "serial": body.serial,
        "signature": cert.signature.hex(),
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


HexText = Annotated[str, Meta(max_length=2 * (PUBLIC_KEY_SIZE_MAX + SIGNATURE_SIZE_MAX))]


class _CertDoc(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # The same bounds as CertBody, so an error names the JSON field at fault.
    type: str
    suite: Name
    network_id: ChainIdField
    subject: Name
    org: Name
    roles: Roles
    public_key: HexText
    not_before_ms: U64
    not_after_ms: U64
    serial: U64
    signature: HexText


def parse_cert(data: bytes, source: str = "certificate") -> tuple[MemberCert, str]:
    """Parse a certificate file into (certificate, suite name).

    Raises IdentityError("malformed", ...) whose reason starts with ``source``.
    Only the form is checked here; trust is :func:`verify_member_cert`'s job.
    """
    if len(data) > CERT_FILE_SIZE_MAX:
        raise IdentityError("malformed", f"{source}: larger than {CERT_FILE_SIZE_MAX} bytes")
    try:
        doc = msgspec.json.decode(data, type=_CertDoc)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise IdentityError("malformed", f"{source}: {exc}") from None
    if doc.type != CERT_FILE_TYPE:
        raise IdentityError("malformed", f"{source}: not a chaincity member certificate")
    try:
        body = CertBody(
            doc.network_id,
            doc.subject,
            doc.org,
            doc.roles,
            _from_hex(doc.public_key, "public_key"),
            doc.not_before_ms,
            doc.not_after_ms,
            doc.serial,
        )
        cert = decode(encode(MemberCert(body, _from_hex(doc.signature, "signature"))), MemberCert)
    except (ValueError, OverflowError, msgspec.EncodeError) as exc:
        raise IdentityError("malformed", f"{source}: {exc}") from None
    return cert, doc.suite


def _from_hex(value: str, field: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"{field} is not hex") from None
