"""The certificate cache never lets a changed certificate ride on a verified one."""

from __future__ import annotations

import msgspec
import pytest

from chaincity.node.identity import CachedAuthorizer
from tests.support import ALICE_KEY, CA_KEY, SUITE, member_cert


def test_a_cached_certificate_does_not_vouch_for_an_altered_copy() -> None:
    auth = CachedAuthorizer(SUITE, "main", {"bank": SUITE.public_key(CA_KEY)})
    cert = member_cert(ALICE_KEY, "alice")
    assert auth(cert, 1).subject == "alice"
    assert auth(member_cert(ALICE_KEY, "alice"), 2).subject == "alice"  # equal copy: cached
    forged = msgspec.structs.replace(
        cert, body=msgspec.structs.replace(cert.body, subject="mallory")
    )
    with pytest.raises(Exception, match="sign"):
        auth(forged, 3)
