"""Who a peer is: mapping a TLS certificate to a configured peer, and which of
two links to the same peer to keep. No I/O here.

TLS has already checked that the certificate chains to one of the trusted
organization CAs. That is not enough: a CA of organization A must not be able
to speak for a node of organization B. So a certificate names a configured
peer only if its node name (a SAN DNS name, or the subject CN when there is no
SAN) is in the peer map *and* it was issued directly by that peer's own
organization CA.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from chaincity.types.primitives import NAME_SIZE_MAX


class PeerRefused(Exception):
    """The remote end is not a configured peer (its fault, or a misconfiguration)."""


@dataclass(frozen=True, slots=True)
class PeerSpec:
    """A configured peer: its node name, its organization, the organization's
    CA certificate (DER) that must have issued its transport certificate, and
    where to dial it (None: wait for it to dial us)."""

    name: str
    org: str
    ca_cert_der: bytes
    address: tuple[str, int] | None = None

    def __post_init__(self) -> None:
        if not 0 < len(self.name) <= NAME_SIZE_MAX:
            raise ValueError(f"peer name must be 1..{NAME_SIZE_MAX} characters")


def get_cert_names(cert: x509.Certificate) -> list[str]:
    """The node names a certificate claims: SAN DNS names, else the subject CN."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return [str(attr.value) for attr in common_names]
    return list(san.value.get_values_for_type(x509.DNSName))


class PeerDirectory:
    """The configured peers, indexed for certificate checks."""

    def __init__(self, local_name: str, peers: Mapping[str, PeerSpec]) -> None:
        for name, spec in peers.items():
            if name != spec.name:
                raise ValueError(f"peer map key {name!r} differs from its spec name")
        if local_name in peers:
            raise ValueError("the local node must not be in its own peer map")
        self.local_name = local_name
        self.peers = dict(peers)
        self._cas = {
            name: x509.load_der_x509_certificate(spec.ca_cert_der) for name, spec in peers.items()
        }

    def identify(self, cert_der: bytes | None, expected: str | None = None) -> str:
        """The configured peer that ``cert_der`` belongs to; PeerRefused otherwise.
        ``expected`` is the peer we dialed, when we dialed."""
        if not cert_der:
            raise PeerRefused("no peer certificate")
        try:
            cert = x509.load_der_x509_certificate(cert_der)
        except ValueError as exc:
            raise PeerRefused(f"unreadable certificate: {exc}") from None
        name = self._configured_name(get_cert_names(cert))
        if expected is not None and name != expected:
            raise PeerRefused(f"dialed {expected!r} but the certificate names {name!r}")
        try:
            cert.verify_directly_issued_by(self._cas[name])
        except (ValueError, TypeError, InvalidSignature):
            raise PeerRefused(
                f"certificate for {name!r} not issued by the CA of org {self.peers[name].org!r}"
            ) from None
        return name

    def _configured_name(self, names: list[str]) -> str:
        known = sorted({n for n in names if n in self.peers})
        if not known:
            raise PeerRefused(f"certificate names {names[:4]!r}: no configured peer")
        if len(known) > 1:
            raise PeerRefused(f"certificate names several configured peers {known!r}")
        return known[0]


def keeps_new_link(local: str, remote: str, *, old_outbound: bool, new_outbound: bool) -> bool:
    """Whether a new link to ``remote`` replaces the one we already have.

    Both ends apply the same rule, so they keep the same TCP connection: a link
    dialed by the node with the smaller name wins over one in the other
    direction; a second link in the same direction means the peer (or we) lost
    the first, so the newer one wins.
    """
    if old_outbound == new_outbound:
        return True
    dialer_should_be_local = local < remote
    return new_outbound == dialer_should_be_local
