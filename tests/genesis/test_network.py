"""`chaincity init`'s engine: the network directory, its checks, and all-or-nothing writes."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from chaincity.crypto import get_suite
from chaincity.genesis import ConfigError, genesis_hash, load_genesis, load_node_config
from chaincity.genesis import network as network_module
from chaincity.genesis.inspect import NetworkView, load_cert_file, load_network
from chaincity.genesis.issue import issue_member_cert
from chaincity.genesis.network import InitOptions, create_network
from chaincity.types.identity import verify_member_cert

NOW_MS = 1_795_000_000_000
# Real TLS validity is checked against this too, so keep it near the present.


def make(target: Path, force: bool = False, **opts: Any) -> NetworkView:
    return create_network(target, InitOptions(**opts), NOW_MS, force)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nets") / "net"
    make(root)
    return root


def copy(net: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(net, target)
    return target


def test_default_network_has_two_orgs_of_two_validators(net: Path) -> None:
    view = load_network(net, NOW_MS)
    assert [o.info.name for o in view.orgs] == ["org1", "org2"]
    assert [n.config.name for n in view.nodes] == [
        "org1-node1",
        "org1-node2",
        "org2-node1",
        "org2-node2",
    ]
    assert all(n.is_validator for n in view.nodes)
    assert [n.config.p2p.port for n in view.nodes] == [7700, 7701, 7702, 7703]
    assert [n.config.api.port for n in view.nodes] == [8700, 8701, 8702, 8703]
    first = view.nodes[0].config
    assert [(p.name, p.org, p.port) for p in first.peers] == [
        ("org1-node2", "org1", 7701),
        ("org2-node1", "org2", 7702),
        ("org2-node2", "org2", 7703),
    ]
    assert view.genesis.network_id == "main"
    assert view.genesis.genesis_time_ms == NOW_MS
    assert all(c.status == "ok" for o in view.orgs for c in o.certs)


def test_private_keys_are_owner_only(net: Path) -> None:
    keys = sorted(net.rglob("*.key"))
    assert len(keys) == 2 * 4 + 4 * 2  # per org: ca, tls-ca, admin, member; per node: 2
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_the_admin_certificate_verifies_against_the_genesis(net: Path) -> None:
    genesis = load_genesis(str(net / "genesis.json"))
    cert = load_cert_file(net / "orgs" / "org2" / "admin.cert", genesis.suite)
    suite = get_suite(genesis.suite)
    verify_member_cert(suite, cert, genesis.ca_keys(), NOW_MS, (), "admin", "main")


def test_existing_network_is_kept_unless_forced(tmp_path: Path) -> None:
    target = tmp_path / "net"
    target.mkdir()  # an empty directory is fine to fill
    first = make(target, orgs=1, validators_per_org=1)
    with pytest.raises(ConfigError, match="already exists"):
        make(target, orgs=1, validators_per_org=1)
    assert genesis_hash(load_genesis(str(target / "genesis.json"))) == first.genesis_hash
    second = make(target, force=True, orgs=1, validators_per_org=1)
    assert second.genesis_hash != first.genesis_hash
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net"]


def test_a_failure_half_way_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "net"
    before = make(target, orgs=1, validators_per_org=1)
    real = network_module.issue_node_cert
    calls = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) >= 3:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(network_module, "issue_node_cert", failing)
    with pytest.raises(OSError, match="disk full"):
        make(target, force=True)
    with pytest.raises(OSError, match="disk full"):
        make(tmp_path / "fresh")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net"]
    assert load_network(target, NOW_MS).genesis_hash == before.genesis_hash


@pytest.mark.parametrize(
    ("opts", "problem"),
    [
        ({"orgs": 0}, "--orgs"),
        ({"validators_per_org": 0}, "--validators-per-org"),
        ({"orgs": 32, "validators_per_org": 9}, "--validators-per-org"),
        ({"base_port": 65534}, "--base-port"),
        ({"base_port": 8000, "api_base_port": 8002}, "overlap"),
        ({"suite": "rot13"}, "unknown crypto suite"),
        ({"network_id": "Main"}, "--network-id"),
        ({"host": "not a host"}, "--host"),
    ],
)
def test_bad_options_write_nothing(tmp_path: Path, opts: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        make(tmp_path / "net", **opts)
    assert list(tmp_path.iterdir()) == []


def test_sm2_network(tmp_path: Path) -> None:
    view = make(tmp_path / "net", suite="sm2-sm3", orgs=1, validators_per_org=1)
    assert view.genesis.suite == "sm2-sm3"
    assert load_network(tmp_path / "net", NOW_MS).genesis_hash == view.genesis_hash


# -- load_network finds what does not fit -----------------------------------------


def _swap_consensus_keys(root: Path) -> None:
    a, b = root / "nodes/org1-node1/consensus.key", root / "nodes/org2-node1/consensus.key"
    data = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(data)


def _replace_tls_cert(root: Path) -> None:
    shutil.copy(root / "nodes/org2-node1/tls.crt", root / "nodes/org1-node1/tls.crt")


def _edit_toml(root: Path, old: str, new: str) -> None:
    path = root / "nodes/org1-node2/node.toml"
    path.write_text(path.read_text().replace(old, new, 1))


def _edit_genesis(root: Path) -> None:
    doc = json.loads((root / "genesis.json").read_text())
    doc["params"]["block_txs_max"] = 1
    (root / "nodes/org1-node1/genesis.json").write_text(json.dumps(doc))
    _edit_toml(root, 'genesis = "../../genesis.json"', 'genesis = "../org1-node1/genesis.json"')


def _truncate(relative: str) -> Any:
    def damage(root: Path) -> None:
        (root / relative).write_bytes(b"{")

    return damage


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_swap_consensus_keys, "not validator org1-node1's key"),
        (_replace_tls_cert, "does not match the certificate"),
        (lambda r: _edit_toml(r, "port = 7701", "port = 7700"), "is also used by"),
        (lambda r: _edit_toml(r, 'org = "org1"', 'org = "org9"'), "not in the genesis"),
        (_edit_genesis, "not the network's genesis"),
        (_truncate("nodes/org2-node2/consensus.key"), "not a JSON key file"),
        (_truncate("orgs/org1/member.cert"), "member.cert: Input data was truncated"),
        (_truncate("genesis.json"), "genesis.json: Input data was truncated"),
        (_truncate("tls-ca-bundle.pem"), "not a PEM certificate"),
    ],
)
def test_damaged_networks_are_refused_naming_the_file(
    net: Path, tmp_path: Path, damage: Any, problem: str
) -> None:
    root = copy(net, tmp_path)
    damage(root)
    with pytest.raises(ConfigError) as info:
        load_network(root, NOW_MS)
    assert problem in str(info.value)
    assert str(info.value).startswith(str(root))


def test_expired_certificates_are_shown_not_raised(net: Path) -> None:
    # A year and a day later: member certificates (365 days) have expired, TLS ones not.
    view = load_network(net, NOW_MS + 366 * 86_400_000)
    assert {c.status for o in view.orgs for c in o.certs} == {"expired"}


# -- issuing certificates from an org directory -------------------------------------


def test_issue_advances_the_serial(net: Path, tmp_path: Path) -> None:
    root = copy(net, tmp_path)
    key = get_suite("ed25519-sha256").public_key(b"\x07" * 32)
    first, genesis = issue_member_cert(root, "org1", "alice", ("member",), key, NOW_MS, 30)
    second, _ = issue_member_cert(root, "org1", "bob", ("member",), key, NOW_MS, 30)
    assert (first.body.serial, second.body.serial) == (3, 4)
    suite = get_suite(genesis.suite)
    verify_member_cert(suite, second, genesis.ca_keys(), NOW_MS, (), "member", "main")
    assert (root / "orgs/org1/next-serial").read_text() == "5\n"


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda r: shutil.copy(r / "orgs/org2/ca.key", r / "orgs/org1/ca.key"), "not org1's CA"),
        (lambda r: (r / "orgs/org1/next-serial").write_text("x"), "not a serial number"),
        (lambda r: (r / "orgs/org1/next-serial").unlink(), "cannot read"),
    ],
)
def test_issue_refuses_a_bad_org_directory(
    net: Path, tmp_path: Path, damage: Any, problem: str
) -> None:
    root = copy(net, tmp_path)
    damage(root)
    key = get_suite("ed25519-sha256").public_key(b"\x07" * 32)
    with pytest.raises(ConfigError, match=problem):
        issue_member_cert(root, "org1", "alice", ("member",), key, NOW_MS, 30)


def test_node_configs_point_into_the_network(net: Path) -> None:
    config = load_node_config(net / "nodes" / "org2-node2" / "node.toml")
    assert Path(config.genesis) == (net / "genesis.json").resolve()
    assert Path(config.data_dir).is_dir()
