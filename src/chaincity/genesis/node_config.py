"""A node's configuration file (TOML): who it is, where it listens, whom it dials.

    name = "org1-node1"
    org = "org1"
    data_dir = "data"
    genesis = "../../genesis.json"
    consensus_key = "consensus.key"

    [p2p]
    host = "127.0.0.1"
    port = 7700

    [api]
    host = "127.0.0.1"
    port = 8700

    [tls]
    cert = "tls.crt"
    key = "tls.key"
    ca_bundle = "../../tls-ca-bundle.pem"

    [[peers]]
    name = "org1-node2"
    org = "org1"
    host = "127.0.0.1"
    port = 7701

Relative paths are relative to the file's own directory, so a network
directory can be moved as a whole; :func:`load_node_config` returns them
resolved.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from chaincity.genesis.errors import ConfigError
from chaincity.genesis.model import SAFE_NAME_PATTERN, SafeName

NODE_CONFIG_FILE_SIZE_MAX = 256 * 1024
PEERS_MAX = 256
PATH_SIZE_MAX = 4096
DEFAULT_HOST = "127.0.0.1"

Port = Annotated[int, Meta(ge=1, le=65535)]
Host = Annotated[str, Meta(min_length=1, max_length=253)]
PathText = Annotated[str, Meta(min_length=1, max_length=PATH_SIZE_MAX)]

_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")


class Listen(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    host: Host = DEFAULT_HOST
    port: Port = 7700


class TlsFiles(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    cert: PathText = "tls.crt"
    key: PathText = "tls.key"
    ca_bundle: PathText = "../../tls-ca-bundle.pem"


class Peer(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: SafeName
    org: SafeName  # whose transport CA must have issued the peer's certificate
    host: Host
    port: Port


class NodeConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: SafeName
    org: SafeName
    p2p: Listen
    api: Listen
    tls: TlsFiles
    data_dir: PathText = "data"
    genesis: PathText = "../../genesis.json"
    consensus_key: PathText = "consensus.key"
    peers: Annotated[tuple[Peer, ...], Meta(max_length=PEERS_MAX)] = ()
    # Threads that check transaction signatures at admission: "auto" = one per
    # core but one; 0 or 1 = on the event loop.
    verify_threads: Annotated[int, Meta(ge=0, le=256)] | Literal["auto"] = "auto"
    # Worker processes that check them instead (no wait for Python's lock): for a
    # validator with cores of its own to spare. 0 = none; when set, it replaces
    # verify_threads.
    verify_processes: Annotated[int, Meta(ge=0, le=64)] = 0
    # Decoded state pages kept in memory per chain where the native state routine is
    # not built (about 1.8 KiB each; the latest tree of N keys has about 0.36-0.38 N
    # pages). The native routine reads pages from the mapped ledger file instead.
    state_cache_pages: Annotated[int, Meta(ge=1_000, le=100_000_000)] = 1_000_000


def dump_node_config(config: NodeConfig) -> bytes:
    header = f"# chaincity node {config.name} of {config.org}; paths relative to this file\n"
    return header.encode() + msgspec.toml.encode(config)


def parse_node_config(data: bytes, source: str) -> NodeConfig:
    """Parse and check a node config; paths are returned as written."""
    if len(data) > NODE_CONFIG_FILE_SIZE_MAX:
        raise ConfigError(f"{source}: larger than {NODE_CONFIG_FILE_SIZE_MAX} bytes")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    try:
        config = msgspec.toml.decode(text, type=NodeConfig)
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply") from None
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise ConfigError(f"{source}: {_one_line(str(exc))}") from None
    problem = _config_problem(config)
    if problem:
        raise ConfigError(f"{source}: {problem}")
    return config


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _config_problem(config: NodeConfig) -> str | None:
    hosts = [("p2p.host", config.p2p.host), ("api.host", config.api.host)]
    hosts += [(f"peer {p.name!r} host", p.host) for p in config.peers]
    for what, host in hosts:
        if not is_valid_host(host):
            return f"{what} {host!r} is not an IP address or host name"
    if config.p2p.port == config.api.port and config.p2p.host == config.api.host:
        return "p2p and api listen on the same address"
    names = [p.name for p in config.peers]
    if len(set(names)) != len(names):
        return "peer names are not unique"
    if config.name in names:
        return "the node lists itself as a peer"
    return None


def is_valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return len(host) <= 253 and _HOSTNAME.match(host) is not None
    return True


def resolve_paths(config: NodeConfig, base_dir: Path) -> NodeConfig:
    """The same config with every relative path made absolute against ``base_dir``."""

    def resolve(value: str) -> str:
        return str((base_dir / value).resolve())

    return msgspec.structs.replace(
        config,
        data_dir=resolve(config.data_dir),
        genesis=resolve(config.genesis),
        consensus_key=resolve(config.consensus_key),
        tls=TlsFiles(
            resolve(config.tls.cert), resolve(config.tls.key), resolve(config.tls.ca_bundle)
        ),
    )


def load_node_config(path: Path) -> NodeConfig:
    """Read, check and resolve a node config file."""
    try:
        with open(path, "rb") as f:
            data = f.read(NODE_CONFIG_FILE_SIZE_MAX + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    return resolve_paths(parse_node_config(data, str(path)), path.parent)


__all__ = [
    "SAFE_NAME_PATTERN",
    "Listen",
    "NodeConfig",
    "Peer",
    "TlsFiles",
    "dump_node_config",
    "load_node_config",
    "parse_node_config",
]
