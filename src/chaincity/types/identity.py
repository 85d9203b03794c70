"""Organizations and member certificates.

Each organization has a CA key. A member certificate binds a subject, an
organization, roles, a public key, a validity window and a serial, signed by
the organization's CA in the network's suite. (DESIGN.md places certificates
with crypto; they live here because their signed bytes come from the codec,
which sits above crypto.)
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from chaincity.codec import Tag, encode, tagged
from chaincity.crypto import CryptoSuite
from chaincity.types.primitives import (
    ROLES_MAX,
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


class CertBody(msgspec.Struct, array_like=True, frozen=True):
    network_id: ChainIdField
    subject: Name
    org: Name
    roles: Roles
    public_key: PublicKeyBytes
    not_before_ms: U64
    not_after_ms: U64
    serial: U64


class MemberCert(msgspec.Struct, array_like=True, frozen=True):
    body: CertBody
    signature: SignatureBytes

    def signing_bytes(self) -> bytes:
        return signing_bytes(self.body)


def signing_bytes(body: CertBody) -> bytes:
    return tagged(Tag.CERT, encode(body))


def issue_cert(suite: CryptoSuite, ca_private_key: bytes, body: CertBody) -> MemberCert:
    return MemberCert(body, suite.sign(ca_private_key, signing_bytes(body)))


def cert_digest(suite: CryptoSuite, cert: MemberCert) -> bytes:
    return suite.tagged_hash(Tag.CERT, encode(cert))
