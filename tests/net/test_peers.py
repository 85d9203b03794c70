"""Mapping certificates to configured peers, and the one-link-per-pair rule."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from chaincity.net import PeerDirectory, PeerRefused, PeerSpec
from chaincity.net.peers import keeps_new_link
from tests.net.certs import OrgCA, make_ca, make_node_cert, peer_spec


def der(path: Path) -> bytes:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def cas() -> dict[str, OrgCA]:
    return {org: make_ca(org) for org in ("bank", "tax")}


def directory(cas: dict[str, OrgCA], tmp_path: Path) -> PeerDirectory:
    peers = {
        "bank-1": peer_spec(make_node_cert(cas["bank"], "bank-1", tmp_path / "ref"), None),
        "tax-1": peer_spec(make_node_cert(cas["tax"], "tax-1", tmp_path / "ref"), None),
    }
    return PeerDirectory("bank-0", peers)


def test_a_configured_peer_is_identified(cas: dict[str, OrgCA], tmp_path: Path) -> None:
    peers = directory(cas, tmp_path)
    node = make_node_cert(cas["tax"], "tax-1", tmp_path)
    assert peers.identify(der(node.cert_file)) == "tax-1"
    assert peers.identify(der(node.cert_file), expected="tax-1") == "tax-1"
    with pytest.raises(PeerRefused, match="dialed 'bank-1'"):
        peers.identify(der(node.cert_file), expected="bank-1")


def test_another_orgs_ca_cannot_speak_for_a_peer(cas: dict[str, OrgCA], tmp_path: Path) -> None:
    peers = directory(cas, tmp_path)
    forged = make_node_cert(cas["bank"], "tax-1", tmp_path)
    with pytest.raises(PeerRefused, match="not issued by the CA of org 'tax'"):
        peers.identify(der(forged.cert_file))


def test_unknown_names_and_garbage_are_refused(cas: dict[str, OrgCA], tmp_path: Path) -> None:
    peers = directory(cas, tmp_path)
    stranger = make_node_cert(cas["bank"], "bank-9", tmp_path)
    with pytest.raises(PeerRefused, match="no configured peer"):
        peers.identify(der(stranger.cert_file))
    with pytest.raises(PeerRefused, match="unreadable"):
        peers.identify(b"\x30\x03garbage")
    with pytest.raises(PeerRefused, match="no peer certificate"):
        peers.identify(None)


def test_common_name_is_used_without_san(cas: dict[str, OrgCA], tmp_path: Path) -> None:
    peers = directory(cas, tmp_path)
    node = make_node_cert(cas["bank"], "bank-1", tmp_path, san=False)
    assert peers.identify(der(node.cert_file)) == "bank-1"


def test_directory_checks_its_config(cas: dict[str, OrgCA]) -> None:
    spec = PeerSpec("a", "bank", cas["bank"].der)
    with pytest.raises(ValueError):
        PeerDirectory("b", {"x": spec})
    with pytest.raises(ValueError):
        PeerDirectory("a", {"a": spec})
    with pytest.raises(ValueError):
        PeerSpec("", "bank", b"")


def test_both_ends_keep_the_same_link() -> None:
    # A link is (dialer, acceptor). Whatever order the two crossing links
    # arrive in at either end, each end keeps the one the smaller name dialed.
    for a, b in itertools.permutations(["alpha", "beta"]):
        crossing = [(a, b), (b, a)]
        for local, remote in ((a, b), (b, a)):
            for first, second in itertools.permutations(crossing):
                keep_new = keeps_new_link(
                    local, remote, old_outbound=first[0] == local, new_outbound=second[0] == local
                )
                survivor = second if keep_new else first
                assert survivor == (min(a, b), max(a, b))


def test_a_second_link_in_the_same_direction_wins() -> None:
    for outbound in (True, False):
        assert keeps_new_link("a", "b", old_outbound=outbound, new_outbound=outbound)
