"""A plain-dict state view, the model the executor is tested against."""

from __future__ import annotations

from typing import Any

import pytest

from chaincity.crypto import get_suite
from chaincity.execution.executor import Sender
from chaincity.types.identity import CertBody, MemberCert, issue_cert

SUITE = get_suite("ed25519-sha256")
CA_KEY = bytes(range(32))
ALICE_KEY = bytes(range(1, 33))
BOB_KEY = bytes(range(2, 34))


class DictNamespace:
    def __init__(self, view: DictView, contract: str) -> None:
        self._view = view
        self._prefix = contract.encode() + b"/"

    def get(self, key: bytes) -> bytes | None:
        return self._view.data.get(self._prefix + key)

    def put(self, key: bytes, value: bytes) -> None:
        self._view.log.append((self._prefix + key, self._view.data.get(self._prefix + key)))
        self._view.data[self._prefix + key] = value

    def delete(self, key: bytes) -> None:
        self._view.log.append((self._prefix + key, self._view.data.get(self._prefix + key)))
        self._view.data.pop(self._prefix + key, None)


class DictView:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.log: list[tuple[bytes, bytes | None]] = []

    def namespace(self, contract: str) -> DictNamespace:
        return DictNamespace(self, contract)

    def checkpoint(self) -> Any:
        return len(self.log)

    def revert(self, checkpoint: Any) -> None:
        while len(self.log) > checkpoint:
            key, old = self.log.pop()
            if old is None:
                self.data.pop(key, None)
            else:
                self.data[key] = old


def member_cert(private_key: bytes, subject: str, org: str = "bank", serial: int = 1) -> MemberCert:
    body = CertBody(
        "main", subject, org, ("member",), SUITE.public_key(private_key), 0, 10**13, serial
    )
    return issue_cert(SUITE, CA_KEY, body)


def authorize(cert: MemberCert, now_ms: int) -> Sender:
    body = cert.body
    if not SUITE.verify(SUITE.public_key(CA_KEY), cert.signing_bytes(), cert.signature):
        raise ValueError("certificate not signed by a known CA")
    if not body.not_before_ms <= now_ms <= body.not_after_ms:
        raise ValueError("certificate not valid at this time")
    return Sender(body.subject, body.org, body.roles, body.public_key)


@pytest.fixture
def view() -> DictView:
    return DictView()
