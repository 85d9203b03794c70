"""Create a ready network directory (``chaincity init``).

Everything is written into a temporary directory beside the target, checked
by loading it back exactly as a node would, and only then renamed into place:
a failure at any point leaves no half-written network behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from chaincity.crypto import CryptoSuite, get_suite
from chaincity.crypto.keyfile import KeyPair, dump_key_pair, generate_key_pair
from chaincity.crypto.suite import CryptoError
from chaincity.crypto.x509 import TlsIdentity, issue_node_cert, new_transport_ca
from chaincity.genesis import layout
from chaincity.genesis.errors import ConfigError
from chaincity.genesis.files import staged_dir, write_public_file, write_secret_file
from chaincity.genesis.inspect import NetworkView, load_network
from chaincity.genesis.model import ChainParams, Genesis, OrgInfo, check_genesis, dump_genesis
from chaincity.genesis.node_config import (
    Listen,
    NodeConfig,
    Peer,
    TlsFiles,
    dump_node_config,
    is_valid_host,
)
from chaincity.types.identity import (
    ROLE_ADMIN,
    ROLE_MEMBER,
    CertBody,
    dump_cert,
    issue_cert,
)
from chaincity.types.primitives import CHAIN_ID_PATTERN, VALIDATORS_MAX, ChainIdField
from chaincity.types.validators import Validator, ValidatorSet

ORGS_INIT_MAX = 32
DAY_MS = 86_400_000
ADMIN_SERIAL = 1
MEMBER_SERIAL = 2


@dataclass(frozen=True, slots=True)
class InitOptions:
    orgs: int = 2
    validators_per_org: int = 2
    suite: str = "ed25519-sha256"
    network_id: str = "main"
    base_port: int = 7700
    api_base_port: int = 8700
    host: str = "127.0.0.1"
    cert_days: int = 365
    tls_days: int = 825
    params: ChainParams | None = None  # the main chain's parameters; None: the defaults


@dataclass(frozen=True, slots=True)
class _Node:
    name: str
    org: str
    index: int
    key: KeyPair


def check_options(opts: InitOptions) -> None:
    """Raise ConfigError for options that cannot make a network."""
    if not 1 <= opts.orgs <= ORGS_INIT_MAX:
        raise ConfigError(f"--orgs must be 1..{ORGS_INIT_MAX}")
    if not opts.validators_per_org >= 1 or opts.orgs * opts.validators_per_org > VALIDATORS_MAX:
        raise ConfigError(f"--validators-per-org must be >= 1 with at most {VALIDATORS_MAX} nodes")
    n = opts.orgs * opts.validators_per_org
    for flag, base in (("--base-port", opts.base_port), ("--api-base-port", opts.api_base_port)):
        if not base >= 1024 or base + n - 1 > 65535:
            raise ConfigError(f"{flag} {base}: ports {base}..{base + n - 1} must be 1024..65535")
    if abs(opts.base_port - opts.api_base_port) < n:
        raise ConfigError("--base-port and --api-base-port ranges overlap")
    if not 1 <= opts.cert_days <= 36_500 or not 1 <= opts.tls_days <= 36_500:
        raise ConfigError("certificate lifetimes must be 1..36500 days")
    try:
        msgspec.convert(opts.network_id, ChainIdField)
    except msgspec.ValidationError:
        raise ConfigError(
            f"--network-id {opts.network_id!r} must match {CHAIN_ID_PATTERN}"
        ) from None
    if not is_valid_host(opts.host):
        raise ConfigError(f"--host {opts.host!r} is not an IP address or host name")


def load_suite(name: str) -> CryptoSuite:
    try:
        return get_suite(name)
    except CryptoError as exc:
        raise ConfigError(f"--suite: {exc}") from None
    except ImportError as exc:
        raise ConfigError(f"--suite: suite {name!r} is not available ({exc})") from None


def create_network(target: Path, opts: InitOptions, now_ms: int, force: bool) -> NetworkView:
    """Write a network directory at ``target`` and return what was written."""
    check_options(opts)
    suite = load_suite(opts.suite)
    with staged_dir(target, force) as tmp:
        _write_network(tmp, opts, suite, now_ms)
        # Load it back as a node would; a bug here must not land on disk.
        load_network(tmp, now_ms)
    return load_network(target, now_ms)


def _write_network(root: Path, opts: InitOptions, suite: CryptoSuite, now_ms: int) -> None:
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    org_names = [f"org{i + 1}" for i in range(opts.orgs)]
    nodes = [
        _Node(f"{org}-node{j + 1}", org, i * opts.validators_per_org + j, generate_key_pair(suite))
        for i, org in enumerate(org_names)
        for j in range(opts.validators_per_org)
    ]
    orgs: list[OrgInfo] = []
    for org in org_names:
        ca_key = generate_key_pair(suite)
        tls_ca = new_transport_ca(org, now, opts.tls_days)
        _write_org(root, org, opts, suite, ca_key, tls_ca, now_ms)
        orgs.append(OrgInfo(org, ca_key.public_key, tls_ca.cert_pem.decode()))
        for node in nodes:
            if node.org == org:
                _write_node(
                    root,
                    node,
                    nodes,
                    opts,
                    issue_node_cert(tls_ca, node.name, org, now, opts.tls_days),
                )
    validators = ValidatorSet(0, tuple(Validator(n.name, n.org, n.key.public_key) for n in nodes))
    genesis = Genesis(
        opts.network_id, suite.name, now_ms, tuple(orgs), validators, opts.params or ChainParams()
    )
    check_genesis(genesis, "--network-id/--suite")
    write_public_file(layout.genesis_path(root), dump_genesis(genesis))
    bundle = b"".join(o.tls_ca_cert_pem.encode() for o in orgs)
    write_public_file(root / layout.CA_BUNDLE_FILE, bundle)
    write_public_file(root / layout.README_FILE, _readme(genesis).encode())


def _write_org(
    root: Path,
    org: str,
    opts: InitOptions,
    suite: CryptoSuite,
    ca_key: KeyPair,
    tls_ca: TlsIdentity,
    now_ms: int,
) -> None:
    d = layout.org_dir(root, org)
    d.mkdir(parents=True)
    write_secret_file(d / layout.CA_KEY_FILE, dump_key_pair(ca_key))
    write_public_file(d / layout.TLS_CA_CERT_FILE, tls_ca.cert_pem)
    write_secret_file(d / layout.TLS_CA_KEY_FILE, tls_ca.key_pem)
    people = (
        ("admin", (ROLE_ADMIN, ROLE_MEMBER), ADMIN_SERIAL),
        ("member", (ROLE_MEMBER,), MEMBER_SERIAL),
    )
    for who, roles, serial in people:
        key = generate_key_pair(suite)
        body = CertBody(
            opts.network_id,
            f"{org}-{who}",
            org,
            roles,
            key.public_key,
            now_ms,
            now_ms + opts.cert_days * DAY_MS,
            serial,
        )
        cert = issue_cert(suite, ca_key.private_key, body)
        write_secret_file(d / f"{who}.key", dump_key_pair(key))
        write_public_file(d / f"{who}.cert", dump_cert(cert, suite.name))
    write_public_file(d / layout.NEXT_SERIAL_FILE, f"{MEMBER_SERIAL + 1}\n".encode())


def _write_node(
    root: Path, node: _Node, nodes: list[_Node], opts: InitOptions, tls: TlsIdentity
) -> None:
    d = layout.node_dir(root, node.name)
    d.mkdir(parents=True)
    (d / "data").mkdir(mode=0o700)
    config = NodeConfig(
        name=node.name,
        org=node.org,
        p2p=Listen(opts.host, opts.base_port + node.index),
        api=Listen(opts.host, opts.api_base_port + node.index),
        tls=TlsFiles(layout.TLS_CERT_FILE, layout.TLS_KEY_FILE, f"../../{layout.CA_BUNDLE_FILE}"),
        data_dir="data",
        genesis=f"../../{layout.GENESIS_FILE}",
        consensus_key=layout.CONSENSUS_KEY_FILE,
        peers=tuple(
            Peer(p.name, p.org, opts.host, opts.base_port + p.index) for p in nodes if p is not node
        ),
    )
    write_public_file(d / layout.NODE_CONFIG_FILE, dump_node_config(config))
    write_secret_file(d / layout.CONSENSUS_KEY_FILE, dump_key_pair(node.key))
    write_public_file(d / layout.TLS_CERT_FILE, tls.cert_pem)
    write_secret_file(d / layout.TLS_KEY_FILE, tls.key_pem)


def _readme(genesis: Genesis) -> str:
    return f"""chaincity network {genesis.network_id} ({genesis.suite})

genesis.json           the genesis; every node must hold the same file
tls-ca-bundle.pem      every organization's transport (TLS) CA certificate
nodes/<node>/          one directory per node: node.toml (config), consensus.key,
                       tls.crt, tls.key, data/
orgs/<org>/            the organization's member CA key (ca.key), transport CA
                       (tls-ca.crt, tls-ca.key), an admin and a member identity
                       (*.key, *.cert) and the next certificate serial

Files ending in .key are private (mode 0600). In a real consortium, give each
organization only genesis.json, tls-ca-bundle.pem, its own orgs/<org>/ and the
nodes/ directories of its own nodes.

Show the network:    chaincity network show --dir <this directory>
Issue a certificate: chaincity cert issue --dir <this directory> --org <org> ...
"""


__all__ = ["InitOptions", "check_options", "create_network", "load_suite"]
