"""Damaged files of every kind give a one-line error naming the file, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaincity.crypto.keyfile import parse_key_pair
from chaincity.crypto.suite import CryptoError
from chaincity.genesis import ConfigError, parse_genesis, parse_node_config
from chaincity.genesis.network import InitOptions, create_network
from chaincity.types.identity import IdentityError, parse_cert

NOW_MS = 1_795_000_000_000


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("hostile") / "net"
    create_network(root, InitOptions(orgs=1, validators_per_org=2), NOW_MS, False)
    return {
        "genesis": (root / "genesis.json").read_bytes(),
        "config": (root / "nodes/org1-node1/node.toml").read_bytes(),
        "cert": (root / "orgs/org1/admin.cert").read_bytes(),
        "key": (root / "orgs/org1/admin.key").read_bytes(),
    }


def damaged(data: bytes, draw: st.DataObject) -> bytes:
    raw = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 4))):
        i = draw.draw(st.integers(0, len(raw) - 1))
        action = draw.draw(st.sampled_from(["flip", "delete", "insert"]))
        if action == "flip":
            raw[i] ^= draw.draw(st.integers(1, 255))
        elif action == "delete":
            del raw[i]
        else:
            raw.insert(i, draw.draw(st.sampled_from(b'"{}[],:=\n\\0x\xff')))
    return bytes(raw)


def parse(kind: str, data: bytes) -> None:
    if kind == "genesis":
        parse_genesis(data, "the-file")
    elif kind == "config":
        parse_node_config(data, "the-file")
    elif kind == "cert":
        parse_cert(data, "the-file")
    else:
        parse_key_pair(data, "the-file")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kind=st.sampled_from(["genesis", "config", "cert", "key"]), draw=st.data())
def test_damaged_files_fail_cleanly(
    files: dict[str, bytes], kind: str, draw: st.DataObject
) -> None:
    try:
        parse(kind, damaged(files[kind], draw))
    except (ConfigError, CryptoError, IdentityError) as exc:
        message = exc.reason if isinstance(exc, IdentityError) else str(exc)
        assert message.startswith("the-file: ")
        assert "\n" not in message


def test_the_undamaged_files_parse(files: dict[str, bytes], tmp_path: Path) -> None:
    for kind, data in files.items():
        parse(kind, data)
