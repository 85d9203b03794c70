"""Genesis files: round trip, canonical hash, and one-line errors for bad files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from chaincity.crypto import get_suite
from chaincity.crypto.x509 import issue_node_cert, new_transport_ca
from chaincity.genesis import ConfigError, dump_genesis, genesis_hash, parse_genesis
from chaincity.genesis.model import ChainParams, Genesis, OrgInfo
from chaincity.types.validators import Validator, ValidatorSet

SUITE = get_suite("ed25519-sha256")
NOW = datetime(2026, 1, 1, tzinfo=UTC)
TLS_CAS = {org: new_transport_ca(org, NOW, 30).cert_pem.decode() for org in ("org1", "org2")}
LEAF = issue_node_cert(new_transport_ca("org1", NOW, 30), "n1", "org1", NOW, 30).cert_pem.decode()


def make_genesis(**changes: Any) -> Genesis:
    orgs = tuple(
        OrgInfo(org, SUITE.public_key(bytes([i]) * 32), TLS_CAS[org])
        for i, org in enumerate(("org1", "org2"), start=1)
    )
    validators = ValidatorSet(
        0,
        tuple(
            Validator(f"v{i}", "org1" if i < 2 else "org2", SUITE.public_key(bytes([10 + i]) * 32))
            for i in range(4)
        ),
    )
    base = Genesis("main", SUITE.name, 1_700_000_000_000, orgs, validators, ChainParams())
    return msgspec.structs.replace(base, **changes)


def doc(**changes: Any) -> dict[str, Any]:
    d: dict[str, Any] = json.loads(dump_genesis(make_genesis()))
    d.update(changes)
    return d


def parse_doc(d: Any) -> Genesis:
    return parse_genesis(json.dumps(d).encode(), "net/genesis.json")


def test_round_trip_and_hash() -> None:
    genesis = make_genesis()
    parsed = parse_genesis(dump_genesis(genesis), "genesis.json")
    assert parsed == genesis
    assert genesis_hash(parsed) == genesis_hash(genesis)
    assert len(genesis_hash(genesis)) == 32
    assert parsed.ca_keys()["org2"] == genesis.orgs[1].ca_public_key


def test_the_hash_commits_to_every_part() -> None:
    base = genesis_hash(make_genesis())
    variants = [
        make_genesis(network_id="test"),
        make_genesis(genesis_time_ms=1),
        make_genesis(params=ChainParams(block_txs_max=10)),
        make_genesis(orgs=tuple(reversed(make_genesis().orgs))),
        make_genesis(validators=ValidatorSet(0, make_genesis().validators.validators[:3])),
    ]
    assert len({base, *(genesis_hash(g) for g in variants)}) == len(variants) + 1


def test_missing_params_take_their_defaults() -> None:
    d = doc()
    d["params"] = {"block_txs_max": 7}
    assert parse_doc(d).params == ChainParams(block_txs_max=7)


def _set(path: str, value: Any) -> dict[str, Any]:
    d = doc()
    *parents, last = path.split(".")
    target: Any = d
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = value
    return d


def _validator(name: str, org: str, key: str) -> dict[str, str]:
    return {"name": name, "org": org, "public_key": key}


KEY_A = SUITE.public_key(b"\x20" * 32).hex()


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("not json", "JSON"),
        (doc(type="chaincity-node"), "not a chaincity genesis file"),
        (doc(version=2), "unsupported genesis format version 2"),
        (doc(surprise=1), "unknown field `surprise`"),
        (doc(suite="rsa"), "suite 'rsa' is not available"),
        (doc(network_id="Main"), "regex"),
        (doc(orgs=[]), "length"),
        (_set("orgs.0.ca_public_key", "xyz"), "ca_public_key is not hex"),
        (_set("orgs.0.ca_public_key", "00" * 31), "not a valid ed25519-sha256 key"),
        (_set("orgs.1.name", "org1"), "organization names are not unique"),
        (_set("orgs.0.tls_ca_cert_pem", "hello"), "not a PEM certificate"),
        (_set("orgs.0.tls_ca_cert_pem", TLS_CAS["org2"]), "names another organization"),
        (_set("orgs.0.tls_ca_cert_pem", LEAF), "not a CA certificate"),
        (_set("orgs.0.tls_ca_cert_pem", TLS_CAS["org1"] * 2), "expected one certificate"),
        (_set("validators.epoch", 3), "epoch 0"),
        (_set("validators.validators", []), "length"),
        (_set("validators.validators.0.org", "org9"), "unknown org 'org9'"),
        (_set("validators.validators.1.name", "v0"), "validator names are not unique"),
        (_set("validators.validators.0.name", "V 0"), "must match"),
        (_set("validators.validators.1", _validator("x", "org1", KEY_A)), None),
        (_set("validators.validators.0.public_key", "00" * 32), "not a valid"),
        (_set("params.block_txs_max", 0), "block_txs_max"),
        (_set("params.round_timeout_max_ms", 60), "round_timeout_max_ms is below"),
        (_set("params.tx_size_bytes_max", "big"), "Expected `int`"),
        (_set("genesis_time_ms", -1), ">= 0"),
    ],
)
def test_bad_genesis_is_one_line_naming_the_file(document: Any, problem: str | None) -> None:
    data = document.encode() if isinstance(document, str) else json.dumps(document).encode()
    if problem is None:  # the control case: a valid change is accepted
        parse_genesis(data, "net/genesis.json")
        return
    with pytest.raises(ConfigError) as info:
        parse_genesis(data, "net/genesis.json")
    message = str(info.value)
    assert message.startswith("net/genesis.json: ")
    assert problem in message
    assert "\n" not in message


def test_two_validators_with_one_key_are_refused() -> None:
    d = doc()
    d["validators"]["validators"][1]["public_key"] = d["validators"]["validators"][0]["public_key"]
    with pytest.raises(ConfigError, match="share a public key"):
        parse_doc(d)


def test_oversized_and_binary_files_are_refused() -> None:
    with pytest.raises(ConfigError, match="larger than"):
        parse_genesis(b" " * (4 * 1024 * 1024 + 1), "g.json")
    with pytest.raises(ConfigError, match=r"^g\.json: "):
        parse_genesis(b"\xff\xfe\x00", "g.json")


def test_hostile_text_stays_on_one_printable_line() -> None:
    data = json.dumps(doc()).encode()
    with pytest.raises(ConfigError, match="not UTF-8"):
        parse_genesis(data.replace(b'"main"', b'"ma\xf4n"'), "g.json")
    with pytest.raises(ConfigError) as info:
        parse_genesis(data.replace(b'"version"', b'"ver\\nsion\\u001b[31m"'), "g.json")
    message = str(info.value)
    assert "\n" not in message
    assert "\x1b" not in message
    assert message.startswith("g.json: Object contains unknown field")
