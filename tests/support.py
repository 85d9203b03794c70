"""Shared test fixtures: a CA, members and signed transactions (Ed25519)."""

from __future__ import annotations

from typing import Any

from chaincity.codec import encode, encode_value
from chaincity.crypto import get_suite
from chaincity.execution.context import Sender
from chaincity.types.identity import CertBody, MemberCert, issue_cert
from chaincity.types.tx import TxBody, sign_tx

SUITE = get_suite("ed25519-sha256")
CA_KEY = bytes(range(32))
ALICE_KEY = bytes(range(1, 33))
BOB_KEY = bytes(range(2, 34))


def member_cert(private_key: bytes, subject: str, org: str = "bank", serial: int = 1) -> MemberCert:
    body = CertBody(
        "main", subject, org, ("member",), SUITE.public_key(private_key), 0, 10**13, serial
    )
    return issue_cert(SUITE, CA_KEY, body)


def authorize(cert: MemberCert, now_ms: int) -> Sender:
    """A minimal authorizer: one trusted CA and the validity window."""
    body = cert.body
    if not SUITE.verify(SUITE.public_key(CA_KEY), cert.signing_bytes(), cert.signature):
        raise ValueError("certificate not signed by a known CA")
    if not body.not_before_ms <= now_ms <= body.not_after_ms:
        raise ValueError("certificate not valid at this time")
    return Sender(body.subject, body.org, body.roles, body.public_key)


def make_tx(
    contract: str,
    method_name: str,
    args: Any,
    *,
    key: bytes = ALICE_KEY,
    nonce: int = 1,
    expiry: int = 50,
    chain: str = "main",
) -> bytes:
    body = TxBody(
        chain, member_cert(key, "alice"), nonce, contract, method_name, encode_value(args), expiry
    )
    return encode(sign_tx(SUITE, key, body))
