"""Issue member certificates from an organization's directory (``chaincity cert issue``).

The serial comes from ``orgs/<org>/next-serial``, which is advanced *before*
the certificate is written: a crash in between wastes a serial but never
issues two certificates with the same one, which would make revoking one
revoke both.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from chaincity.genesis import layout
from chaincity.genesis.errors import ConfigError
from chaincity.genesis.files import read_bounded, write_public_file
from chaincity.genesis.inspect import load_key_file
from chaincity.genesis.model import Genesis, load_genesis
from chaincity.types.identity import (
    CertBody,
    IdentityError,
    MemberCert,
    Roles,
    check_cert_form,
    issue_cert,
)
from chaincity.types.primitives import Name

DAY_MS = 86_400_000
SERIAL_MAX = 2**63 - 1


def read_next_serial(path: Path) -> int:
    text = read_bounded(path, 64).decode("ascii", errors="replace").strip()
    if not text.isdigit() or not 1 <= int(text) <= SERIAL_MAX:
        raise ConfigError(f"{path}: not a serial number")
    return int(text)


def _check_option(value: object, typ: object, flag: str) -> None:
    try:
        msgspec.convert(value, typ)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{flag}: {str(exc).split(' - at ')[0]}") from None


def issue_member_cert(
    root: Path,
    org: str,
    subject: str,
    roles: tuple[str, ...],
    public_key: bytes,
    now_ms: int,
    days: int,
) -> tuple[MemberCert, Genesis]:
    """A certificate signed by ``org``'s CA key from the network directory ``root``."""
    genesis = load_genesis(str(layout.genesis_path(root)))
    info = genesis.org(org)
    if info is None:
        raise ConfigError(f"{layout.genesis_path(root)}: no organization {org!r}")
    org_dir = layout.org_dir(root, org)
    ca = load_key_file(org_dir / layout.CA_KEY_FILE, genesis.suite)
    if ca.public_key != info.ca_public_key:
        raise ConfigError(f"{org_dir / layout.CA_KEY_FILE}: not {org}'s CA key in the genesis")
    if not 1 <= days <= 36_500:
        raise ConfigError("--days must be 1..36500")
    _check_option(subject, Name, "--subject")
    _check_option(roles, Roles, "--role")
    serial_path = org_dir / layout.NEXT_SERIAL_FILE
    serial = read_next_serial(serial_path)
    body = CertBody(
        genesis.network_id, subject, org, roles, public_key, now_ms, now_ms + days * DAY_MS, serial
    )
    cert = issue_cert(ca.suite, ca.private_key, body)
    try:
        check_cert_form(ca.suite, cert)
    except IdentityError as exc:
        raise ConfigError(exc.reason) from None
    write_public_file(serial_path, f"{serial + 1}\n".encode())
    return cert, genesis
