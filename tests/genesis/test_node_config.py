"""Node config files: round trip, path resolution, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaincity.genesis import ConfigError, load_node_config, parse_node_config
from chaincity.genesis.node_config import Listen, NodeConfig, Peer, TlsFiles, dump_node_config

CONFIG = NodeConfig(
    name="org1-node1",
    org="org1",
    p2p=Listen("127.0.0.1", 7700),
    api=Listen("127.0.0.1", 8700),
    tls=TlsFiles(),
    peers=(Peer("org2-node1", "org2", "node.example.org", 7701),),
)
TEXT = dump_node_config(CONFIG)


def test_round_trip() -> None:
    assert parse_node_config(TEXT, "node.toml") == CONFIG


def test_loading_resolves_paths_against_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nodes" / "n1" / "node.toml"
    path.parent.mkdir(parents=True)
    path.write_bytes(TEXT)
    config = load_node_config(path)
    assert config.genesis == str(tmp_path / "genesis.json")
    assert config.tls.ca_bundle == str(tmp_path / "tls-ca-bundle.pem")
    assert config.consensus_key == str(path.parent / "consensus.key")
    assert config.data_dir == str(path.parent / "data")


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (b"port = 7700", b"port = 70000", "<= 65535"),
        (b"port = 7700", b'port = "7700"', "Expected `int`"),
        (b'name = "org1-node1"', b'name = "Node One"', "$.name"),
        (b'name = "org1-node1"', b'nmae = "org1-node1"', "unknown field `nmae`"),
        (b'host = "node.example.org"', b'host = "bad host!"', "not an IP address or host name"),
        (b"port = 8700", b"port = 7700", "same address"),
        (b'name = "org2-node1"', b'name = "org1-node1"', "lists itself"),
        (b"[p2p]", b"[p2p", "table declaration (at line"),
        (b"org1-node1", b"\xff", "not UTF-8"),
    ],
)
def test_bad_config_is_one_line_naming_the_file(old: bytes, new: bytes, problem: str) -> None:
    assert old in TEXT
    with pytest.raises(ConfigError) as info:
        parse_node_config(TEXT.replace(old, new, 1), "nodes/n1/node.toml")
    message = str(info.value)
    assert message.startswith("nodes/n1/node.toml: ")
    assert problem in message
    assert "\n" not in message


def test_duplicate_peers_and_missing_files_are_refused(tmp_path: Path) -> None:
    config = parse_node_config(TEXT, "n")
    twice = NodeConfig(
        config.name, config.org, config.p2p, config.api, config.tls, peers=config.peers * 2
    )
    with pytest.raises(ConfigError, match="peer names are not unique"):
        parse_node_config(dump_node_config(twice), "n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_node_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="larger than"):
        parse_node_config(b"#" * 300_000, "n")
