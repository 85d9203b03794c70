"""Transport certificates: X.509 for mutual TLS between nodes.

Every organization has a transport CA, separate from its member CA (which signs
in the network's suite). Transport certificates always use ECDSA P-256 with
SHA-256, whatever the network's suite: Python's ``ssl`` module (OpenSSL through
the standard library) cannot negotiate TLS with SM2 certificates. A node's
certificate names the node in its subjectAltName (a DNS name) and its
organization in the subject, and is good for both ends of a connection, since
nodes dial each other.

Clock readings are passed in: the caller decides what "now" is.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PEM_SIZE_MAX = 16 * 1024
BUNDLE_CERTS_MAX = 256
# Machines in a consortium do not share a clock; accept a little skew at issue.
CLOCK_SKEW = timedelta(minutes=5)


class TransportCertError(Exception):
    """A transport certificate or key is malformed or not issued as expected."""


@dataclass(frozen=True, slots=True)
class TlsIdentity:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes


def _name(org: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def new_transport_ca(org: str, now: datetime, days: int) -> TlsIdentity:
    """A self-signed transport CA for ``org``, valid ``days`` from ``now``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(org, f"{org} transport CA")
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    cert = builder.sign(key, hashes.SHA256())
    return TlsIdentity(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue_node_cert(ca: TlsIdentity, node: str, org: str, now: datetime, days: int) -> TlsIdentity:
    """A node certificate for ``node`` of ``org``, signed by the org's transport CA."""
    ca_cert = load_cert(ca.cert_pem, "transport CA certificate")
    ca_key = _load_ec_key(ca.key_pem, "transport CA key")
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(org, node))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(node)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    cert = builder.sign(ca_key, hashes.SHA256())
    return TlsIdentity(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def load_cert(pem: bytes, source: str) -> x509.Certificate:
    """One PEM certificate; raises TransportCertError naming ``source``."""
    certs = load_cert_bundle(pem, source)
    if len(certs) != 1:
        raise TransportCertError(f"{source}: expected one certificate, found {len(certs)}")
    return certs[0]


def load_cert_bundle(pem: bytes, source: str) -> list[x509.Certificate]:
    """Every PEM certificate in ``pem``, at least one and at most BUNDLE_CERTS_MAX."""
    if len(pem) > PEM_SIZE_MAX * BUNDLE_CERTS_MAX:
        raise TransportCertError(f"{source}: too large")
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise TransportCertError(f"{source}: not a PEM certificate") from None
    if len(certs) > BUNDLE_CERTS_MAX:
        raise TransportCertError(f"{source}: more than {BUNDLE_CERTS_MAX} certificates")
    for cert in certs:
        if not _is_p256(cert):
            raise TransportCertError(f"{source}: certificate key is not ECDSA P-256")
    return certs


def _is_p256(cert: x509.Certificate) -> bool:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):  # parsed lazily: a damaged key shows here
        return False
    return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)


def _load_ec_key(pem: bytes, source: str) -> ec.EllipticCurvePrivateKey:
    if len(pem) > PEM_SIZE_MAX:
        raise TransportCertError(f"{source}: too large")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise TransportCertError(f"{source}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise TransportCertError(f"{source}: key is not ECDSA P-256")
    return key


def is_ca_cert(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except (x509.ExtensionNotFound, ValueError):  # absent, or malformed extensions
        return False
    return constraints.value.ca


def cert_org(cert: x509.Certificate) -> str:
    try:
        values = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    except ValueError:  # a malformed subject names no organization
        return ""
    return str(values[0].value) if values else ""


def cert_dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (x509.ExtensionNotFound, ValueError):  # absent, or malformed extensions
        return []
    return [str(n) for n in san.value.get_values_for_type(x509.DNSName)]


def check_node_identity(
    identity: TlsIdentity,
    ca_certs: Iterable[x509.Certificate],
    node: str,
    org: str,
    now: datetime,
    source: str,
) -> None:
    """Raise TransportCertError unless ``identity`` is ``node``'s certificate of
    ``org``, issued by ``org``'s CA among ``ca_certs``, valid at ``now``, and its
    key matches."""
    cert = load_cert(identity.cert_pem, source)
    key = _load_ec_key(identity.key_pem, f"{source} key")
    if key.public_key() != cert.public_key():
        raise TransportCertError(f"{source}: private key does not match the certificate")
    if node not in cert_dns_names(cert) or cert_org(cert) != org:
        raise TransportCertError(f"{source}: certificate is not for node {node} of {org}")
    if not any(_issued_by(cert, ca) and cert_org(ca) == org for ca in ca_certs):
        raise TransportCertError(f"{source}: not issued by {org}'s transport CA")
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise TransportCertError(f"{source}: not valid at {now.isoformat()}")


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def server_context(cert_file: str, key_file: str, ca_bundle_file: str) -> ssl.SSLContext:
    """Accepts only peers whose certificate chains to a CA in the bundle."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _configure(ctx, cert_file, key_file, ca_bundle_file)
    return ctx


def client_context(cert_file: str, key_file: str, ca_bundle_file: str) -> ssl.SSLContext:
    """Dials a peer by node name (pass it as ``server_hostname``); presents our cert."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _configure(ctx, cert_file, key_file, ca_bundle_file)
    ctx.check_hostname = True
    return ctx


def _configure(ctx: ssl.SSLContext, cert_file: str, key_file: str, ca_bundle_file: str) -> None:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_cert_chain(cert_file, key_file)
        ctx.load_verify_locations(cafile=ca_bundle_file)
    except (ssl.SSLError, OSError) as exc:
        raise TransportCertError(f"cannot load TLS files: {exc}") from None


def peer_identity(peer_cert: dict[str, object] | None) -> tuple[str, str]:
    """(node name, org) of a verified peer, from ``SSLObject.getpeercert()``.

    The server side must compare this with the peer it expects: TLS only proves
    the certificate chains to some organization's CA.
    """
    if not peer_cert:
        raise TransportCertError("peer presented no certificate")
    names = [v for k, v in _pairs(peer_cert.get("subjectAltName")) if k == "DNS"]
    orgs = [
        v
        for rdn in _tuples(peer_cert.get("subject"))
        for k, v in _pairs(rdn)
        if k == "organizationName"
    ]
    if len(names) != 1 or len(orgs) != 1:
        raise TransportCertError("peer certificate must name exactly one node and one org")
    return names[0], orgs[0]


def _tuples(value: object) -> tuple[object, ...]:
    return value if isinstance(value, tuple) else ()


def _pairs(value: object) -> list[tuple[str, str]]:
    return [(str(p[0]), str(p[1])) for p in _tuples(value) if isinstance(p, tuple) and len(p) == 2]
