"""Genesis and node-config files, and the network directory ``chaincity init`` writes."""

from chaincity.genesis.errors import ConfigError
from chaincity.genesis.model import (
    ChainParams,
    Genesis,
    OrgInfo,
    dump_genesis,
    genesis_hash,
    load_genesis,
    parse_genesis,
)
from chaincity.genesis.node_config import NodeConfig, load_node_config, parse_node_config

__all__ = [
    "ChainParams",
    "ConfigError",
    "Genesis",
    "NodeConfig",
    "OrgInfo",
    "dump_genesis",
    "genesis_hash",
    "load_genesis",
    "load_node_config",
    "parse_genesis",
    "parse_node_config",
]
