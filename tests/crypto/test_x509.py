"""Transport certificates: issue, check, and a real mutual-TLS handshake on 127.0.0.1."""

from __future__ import annotations

import socket
import ssl
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chaincity.crypto.x509 import (
    TlsIdentity,
    TransportCertError,
    check_node_identity,
    client_context,
    issue_node_cert,
    load_cert,
    new_transport_ca,
    peer_identity,
    server_context,
)

# Real handshakes check validity against the system clock, so issue "now".
NOW = datetime.now(UTC)
TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def cas() -> dict[str, TlsIdentity]:
    return {org: new_transport_ca(org, NOW, 30) for org in ("org1", "org2", "rogue")}


def files(tmp: Path, name: str, identity: TlsIdentity, bundle: list[TlsIdentity]) -> list[str]:
    paths = [tmp / f"{name}.crt", tmp / f"{name}.key", tmp / f"{name}-bundle.pem"]
    paths[0].write_bytes(identity.cert_pem)
    paths[1].write_bytes(identity.key_pem)
    paths[2].write_bytes(b"".join(ca.cert_pem for ca in bundle))
    return [str(p) for p in paths]


def handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, server_hostname: str
) -> tuple[object, object]:
    """Connect once; return what each side saw: the peer's (node, org) or the error."""
    results: dict[str, object] = {}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT_S)
        port = listener.getsockname()[1]

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                conn.settimeout(TIMEOUT_S)
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    results["server"] = peer_identity(tls.getpeercert())
                    tls.sendall(b"ok")
            except (OSError, TransportCertError) as exc:
                results["server"] = exc

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as raw,
                client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
            ):
                identity = peer_identity(tls.getpeercert())
                # TLS 1.3 reports a refused client certificate only on read.
                results["client"] = identity if tls.recv(2) == b"ok" else "closed"
        except OSError as exc:
            results["client"] = exc
        thread.join(TIMEOUT_S)
    assert not thread.is_alive()
    return results["server"], results["client"]


def test_two_nodes_of_different_orgs_complete_mutual_tls(
    tmp_path: Path, cas: dict[str, TlsIdentity]
) -> None:
    trusted = [cas["org1"], cas["org2"]]
    a = issue_node_cert(cas["org1"], "org1-node1", "org1", NOW, 30)
    b = issue_node_cert(cas["org2"], "org2-node1", "org2", NOW, 30)
    server = server_context(*files(tmp_path, "a", a, trusted))
    client = client_context(*files(tmp_path, "b", b, trusted))
    seen_by_server, seen_by_client = handshake(server, client, "org1-node1")
    assert seen_by_server == ("org2-node1", "org2")
    assert seen_by_client == ("org1-node1", "org1")


def test_a_client_from_an_unknown_ca_is_refused(
    tmp_path: Path, cas: dict[str, TlsIdentity]
) -> None:
    trusted = [cas["org1"], cas["org2"]]
    a = issue_node_cert(cas["org1"], "org1-node1", "org1", NOW, 30)
    rogue = issue_node_cert(cas["rogue"], "org2-node1", "org2", NOW, 30)
    server = server_context(*files(tmp_path, "a", a, trusted))
    client = client_context(*files(tmp_path, "r", rogue, [*trusted, cas["rogue"]]))
    seen_by_server, seen_by_client = handshake(server, client, "org1-node1")
    assert isinstance(seen_by_server, ssl.SSLCertVerificationError)
    assert "certificate verify failed" in str(seen_by_server)
    assert "expired" not in str(seen_by_server)
    assert isinstance(seen_by_client, OSError)


def test_a_server_from_an_unknown_ca_or_with_another_name_is_refused(
    tmp_path: Path, cas: dict[str, TlsIdentity]
) -> None:
    trusted = [cas["org1"], cas["org2"]]
    b = issue_node_cert(cas["org2"], "org2-node1", "org2", NOW, 30)
    client = client_context(*files(tmp_path, "b", b, trusted))
    rogue = issue_node_cert(cas["rogue"], "org1-node1", "org1", NOW, 30)
    server = server_context(*files(tmp_path, "r", rogue, [*trusted, cas["rogue"]]))
    _, seen_by_client = handshake(server, client, "org1-node1")
    assert isinstance(seen_by_client, ssl.SSLCertVerificationError)
    assert "certificate verify failed" in str(seen_by_client)
    assert "expired" not in str(seen_by_client)
    a = issue_node_cert(cas["org1"], "org1-node1", "org1", NOW, 30)
    server = server_context(*files(tmp_path, "a", a, trusted))
    _, seen_by_client = handshake(server, client, "org1-node2")
    assert isinstance(seen_by_client, ssl.SSLCertVerificationError)
    assert "Hostname mismatch" in str(seen_by_client)


def test_check_node_identity_accepts_the_right_node_only(cas: dict[str, TlsIdentity]) -> None:
    bundle = [load_cert(ca.cert_pem, "ca") for ca in cas.values()]
    a = issue_node_cert(cas["org1"], "org1-node1", "org1", NOW, 30)
    check_node_identity(a, bundle, "org1-node1", "org1", NOW, "tls.crt")
    problems = [
        (a, "org1-node2", "org1", NOW, "not for node"),
        (a, "org1-node1", "org2", NOW, "not for node"),
        (a, "org1-node1", "org1", NOW + timedelta(days=31), "not valid at"),
        (TlsIdentity(a.cert_pem, cas["org1"].key_pem), "org1-node1", "org1", NOW, "match"),
        (issue_node_cert(cas["rogue"], "x", "org1", NOW, 30), "x", "org1", NOW, "not issued"),
        (TlsIdentity(b"junk", a.key_pem), "org1-node1", "org1", NOW, "not a PEM"),
    ]
    for identity, node, org, when, problem in problems:
        with pytest.raises(TransportCertError, match=problem):
            check_node_identity(identity, bundle, node, org, when, "tls.crt")


def test_node_certificates_do_not_outlive_their_ca(cas: dict[str, TlsIdentity]) -> None:
    node = load_cert(issue_node_cert(cas["org1"], "n", "org1", NOW, 3650).cert_pem, "n")
    assert node.not_valid_after_utc == load_cert(cas["org1"].cert_pem, "ca").not_valid_after_utc
