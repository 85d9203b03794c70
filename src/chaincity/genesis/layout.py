"""Where things live in a network directory made by ``chaincity init``.

    DIR/genesis.json              the genesis (public)
    DIR/tls-ca-bundle.pem         every organization's transport CA (public)
    DIR/README.txt                what is where, for the operator
    DIR/nodes/<node>/node.toml    node config (paths relative to it)
    DIR/nodes/<node>/consensus.key, tls.crt, tls.key
    DIR/orgs/<org>/ca.key         member CA key (network suite)
    DIR/orgs/<org>/tls-ca.crt, tls-ca.key
    DIR/orgs/<org>/admin.key, admin.cert, member.key, member.cert
    DIR/orgs/<org>/next-serial    the next member certificate serial

Every ``*.key`` file is created with mode 0600. In a real consortium each
organization keeps only its own ``orgs/<org>`` and ``nodes/<its nodes>``.
"""

from __future__ import annotations

from pathlib import Path

GENESIS_FILE = "genesis.json"
CA_BUNDLE_FILE = "tls-ca-bundle.pem"
README_FILE = "README.txt"
NODES_DIR = "nodes"
ORGS_DIR = "orgs"
NODE_CONFIG_FILE = "node.toml"
CONSENSUS_KEY_FILE = "consensus.key"
TLS_CERT_FILE = "tls.crt"
TLS_KEY_FILE = "tls.key"
CA_KEY_FILE = "ca.key"
TLS_CA_CERT_FILE = "tls-ca.crt"
TLS_CA_KEY_FILE = "tls-ca.key"
NEXT_SERIAL_FILE = "next-serial"


def genesis_path(root: Path) -> Path:
    return root / GENESIS_FILE


def node_dir(root: Path, node: str) -> Path:
    return root / NODES_DIR / node


def org_dir(root: Path, org: str) -> Path:
    return root / ORGS_DIR / org


def node_config_paths(root: Path) -> list[Path]:
    """Every node config under DIR/nodes, sorted by node directory name."""
    nodes = root / NODES_DIR
    if not nodes.is_dir():
        return []
    return sorted(p / NODE_CONFIG_FILE for p in nodes.iterdir() if p.is_dir())
