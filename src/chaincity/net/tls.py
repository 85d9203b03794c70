"""TLS contexts for peer links: TLS 1.3 only, certificates required both ways.

Hostname checking is off on the client side on purpose: after the handshake
the transport maps the certificate to a configured peer (name *and* issuing
organization CA, see peers.py), which is stricter than a hostname match.
"""

from __future__ import annotations

import ssl
from pathlib import Path


def _context(
    protocol: ssl._SSLMethod, cert_file: Path, key_file: Path, ca_pem: str
) -> ssl.SSLContext:
    # A bare context: only the organization CAs are trusted, never the system store.
    ctx = ssl.SSLContext(protocol)
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(cadata=ca_pem)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def make_server_context(cert_file: Path, key_file: Path, ca_pem: str) -> ssl.SSLContext:
    """Context for accepted links; ``ca_pem`` holds every trusted organization CA."""
    return _context(ssl.PROTOCOL_TLS_SERVER, cert_file, key_file, ca_pem)


def make_client_context(cert_file: Path, key_file: Path, ca_pem: str) -> ssl.SSLContext:
    """Context for dialed links; presents our certificate to the peer."""
    return _context(ssl.PROTOCOL_TLS_CLIENT, cert_file, key_file, ca_pem)
