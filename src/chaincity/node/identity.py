"""Member certificate checks with the expensive part done once per certificate.

The CA signature over a certificate never changes, so it is verified once and
remembered by the certificate; the validity window and revocation are
checked on every call, against the time given.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Container, Mapping

from chaincity.crypto import CryptoSuite
from chaincity.execution.context import Sender
from chaincity.types.identity import (
    ROLE_MEMBER,
    MemberCert,
    check_cert_status,
    verify_member_cert,
)

CACHE_ENTRIES_MAX = 65_536


class CachedAuthorizer:
    def __init__(
        self,
        suite: CryptoSuite,
        network_id: str,
        ca_keys: Mapping[str, bytes],
        revoked: Container[tuple[str, int]] = frozenset(),
        required_role: str | None = ROLE_MEMBER,
    ) -> None:
        self._suite = suite
        self._network_id = network_id
        self._ca_keys = dict(ca_keys)
        self._revoked = revoked
        self._role = required_role
        # Keyed by the certificate itself (a frozen struct: hashed and compared field
        # by field, so any change to it is another key), cheaper than its bytes.
        self._verified: OrderedDict[MemberCert, Sender] = OrderedDict()

    def __call__(self, cert: MemberCert, now_ms: int) -> Sender:
        key = cert
        sender = self._verified.get(key)
        if sender is None:
            verify_member_cert(
                self._suite,
                cert,
                self._ca_keys,
                now_ms,
                self._revoked,
                self._role,
                self._network_id,
            )
            b = cert.body
            sender = Sender(b.subject, b.org, b.roles, b.public_key)
            self._verified[key] = sender
            if len(self._verified) > CACHE_ENTRIES_MAX:
                self._verified.popitem(last=False)
            return sender
        check_cert_status(cert, now_ms, self._revoked, self._role)
        return sender
