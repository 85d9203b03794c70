"""Load a whole network directory and check that its parts agree.

Used by ``chaincity network show`` and by ``chaincity init`` on its own output
before that output is renamed into place. Malformed files raise ConfigError;
certificates that are well formed but no longer acceptable (expired, for
instance) are reported in the view, not raised, so an operator can still see
the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from chaincity.crypto import get_suite
from chaincity.crypto.keyfile import KEY_FILE_SIZE_MAX, KeyPair, parse_key_pair
from chaincity.crypto.suite import CryptoError
from chaincity.crypto.x509 import (
    PEM_SIZE_MAX,
    TlsIdentity,
    TransportCertError,
    check_node_identity,
    load_cert,
    load_cert_bundle,
)
from chaincity.genesis import layout
from chaincity.genesis.errors import ConfigError
from chaincity.genesis.files import read_bounded
from chaincity.genesis.model import Genesis, OrgInfo, genesis_hash, load_genesis
from chaincity.genesis.node_config import NodeConfig, load_node_config
from chaincity.types.identity import (
    CERT_FILE_SIZE_MAX,
    IdentityError,
    MemberCert,
    parse_cert,
    verify_member_cert,
)

NODES_MAX = 1024
ORG_FILES_MAX = 256


@dataclass(frozen=True, slots=True)
class NodeView:
    config: NodeConfig
    config_path: Path
    consensus_public_key: bytes
    is_validator: bool


@dataclass(frozen=True, slots=True)
class CertView:
    path: Path
    cert: MemberCert
    status: str  # "ok" or an IdentityError kind


@dataclass(frozen=True, slots=True)
class OrgView:
    info: OrgInfo
    dir: Path | None  # None when this copy of the network lacks the org's files
    certs: tuple[CertView, ...]
    key_files: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class NetworkView:
    root: Path
    genesis: Genesis
    genesis_hash: bytes
    orgs: tuple[OrgView, ...]
    nodes: tuple[NodeView, ...]


def load_key_file(path: Path, suite_name: str) -> KeyPair:
    """A key file of the network's suite; ConfigError naming the file otherwise."""
    data = read_bounded(path, KEY_FILE_SIZE_MAX)
    try:
        pair = parse_key_pair(data, str(path))
    except (CryptoError, ImportError) as exc:
        raise ConfigError(
            str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"
        ) from None
    if pair.suite.name != suite_name:
        raise ConfigError(f"{path}: key is for suite {pair.suite.name}, network uses {suite_name}")
    return pair


def load_cert_file(path: Path, suite_name: str) -> MemberCert:
    data = read_bounded(path, CERT_FILE_SIZE_MAX)
    try:
        cert, cert_suite = parse_cert(data, str(path))
    except IdentityError as exc:
        raise ConfigError(exc.reason) from None
    if cert_suite != suite_name:
        raise ConfigError(
            f"{path}: certificate is for suite {cert_suite}, network uses {suite_name}"
        )
    return cert


def load_network(root: Path, now_ms: int) -> NetworkView:
    """Load and cross-check DIR; raises ConfigError('<file>: <problem>')."""
    if not root.is_dir():
        raise ConfigError(f"{root}: not a network directory")
    genesis = load_genesis(str(layout.genesis_path(root)))
    ghash = genesis_hash(genesis)
    config_paths = layout.node_config_paths(root)
    if len(config_paths) > NODES_MAX:
        raise ConfigError(f"{root / layout.NODES_DIR}: more than {NODES_MAX} nodes")
    nodes = tuple(_load_node(p, genesis, ghash, now_ms) for p in config_paths)
    _check_addresses(nodes)
    orgs = tuple(_load_org(root, org, genesis, now_ms) for org in genesis.orgs)
    return NetworkView(root, genesis, ghash, orgs, nodes)


def _load_node(path: Path, genesis: Genesis, ghash: bytes, now_ms: int) -> NodeView:
    config = load_node_config(path)
    if genesis.org(config.org) is None:
        raise ConfigError(f"{path}: org {config.org!r} is not in the genesis")
    for peer in config.peers:
        if genesis.org(peer.org) is None:
            raise ConfigError(
                f"{path}: peer {peer.name!r} has org {peer.org!r}, not in the genesis"
            )
    node_genesis = load_genesis(config.genesis)
    if genesis_hash(node_genesis) != ghash:
        raise ConfigError(f"{config.genesis}: not the network's genesis")
    key = load_key_file(Path(config.consensus_key), genesis.suite)
    index = genesis.validators.index_of(key.public_key)
    named = [v for v in genesis.validators.validators if v.name == config.name]
    if named and (index is None or named[0].public_key != key.public_key):
        raise ConfigError(f"{config.consensus_key}: not validator {config.name}'s key in genesis")
    if index is not None and not named:
        raise ConfigError(f"{config.consensus_key}: key of another validator")
    if named and named[0].org != config.org:
        raise ConfigError(f"{path}: validator {config.name} belongs to {named[0].org} in genesis")
    _check_tls(config, genesis, now_ms)
    return NodeView(config, path, key.public_key, bool(named))


def _check_tls(config: NodeConfig, genesis: Genesis, now_ms: int) -> None:
    try:
        _check_tls_files(config, genesis, now_ms)
    except TransportCertError as exc:
        raise ConfigError(str(exc)) from None


def _check_tls_files(config: NodeConfig, genesis: Genesis, now_ms: int) -> None:
    bundle_path = Path(config.tls.ca_bundle)
    bundle = load_cert_bundle(read_bounded(bundle_path, PEM_SIZE_MAX * 64), str(bundle_path))
    for org in genesis.orgs:
        ca = load_cert(org.tls_ca_cert_pem.encode(), f"genesis org {org.name}")
        if ca not in bundle:
            raise ConfigError(f"{bundle_path}: lacks the transport CA of {org.name}")
    identity = TlsIdentity(
        read_bounded(Path(config.tls.cert), PEM_SIZE_MAX),
        read_bounded(Path(config.tls.key), PEM_SIZE_MAX),
    )
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    check_node_identity(identity, bundle, config.name, config.org, now, config.tls.cert)


def _check_addresses(nodes: tuple[NodeView, ...]) -> None:
    seen: dict[tuple[str, int], Path] = {}
    for node in nodes:
        for listen in (node.config.p2p, node.config.api):
            where = (listen.host, listen.port)
            if where in seen:
                raise ConfigError(
                    f"{node.config_path}: {listen.host}:{listen.port} is also used by {seen[where]}"
                )
            seen[where] = node.config_path


def _load_org(root: Path, info: OrgInfo, genesis: Genesis, now_ms: int) -> OrgView:
    d = layout.org_dir(root, info.name)
    if not d.is_dir():
        return OrgView(info, None, (), ())
    files = sorted(d.iterdir())[: ORG_FILES_MAX + 1]
    if len(files) > ORG_FILES_MAX:
        raise ConfigError(f"{d}: more than {ORG_FILES_MAX} files")
    certs = tuple(_cert_view(p, genesis, now_ms) for p in files if p.suffix == ".cert")
    keys = tuple(p for p in files if p.suffix == ".key" and p.name != layout.TLS_CA_KEY_FILE)
    for key_path in keys:
        load_key_file(key_path, genesis.suite)
    return OrgView(info, d, certs, keys)


def _cert_view(path: Path, genesis: Genesis, now_ms: int) -> CertView:
    cert = load_cert_file(path, genesis.suite)
    try:
        verify_member_cert(
            get_suite(genesis.suite),
            cert,
            genesis.ca_keys(),
            now_ms,
            (),
            network_id=genesis.network_id,
        )
    except IdentityError as exc:
        return CertView(path, cert, exc.kind)
    return CertView(path, cert, "ok")
