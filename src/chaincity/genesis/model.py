"""The genesis: what every node of a network agrees on before block 1.

The genesis is stored as readable JSON (keys in hex, the transport CA
certificates in PEM) and committed to by a canonical hash, the tagged hash of
the :class:`Genesis` struct's canonical bytes. Two nodes with the same genesis
hash agree on the network id, the suite, the organizations and their CA keys,
the first validator set and the chain parameters.

Loading checks every field and the relations between them, and a problem is
reported as one line naming the file.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from chaincity.codec import Tag, decode, encode
from chaincity.crypto import CryptoSuite, get_suite
from chaincity.crypto.suite import CryptoError
from chaincity.crypto.x509 import (
    PEM_SIZE_MAX,
    TransportCertError,
    cert_org,
    is_ca_cert,
    load_cert,
)
from chaincity.genesis.errors import ConfigError
from chaincity.types.primitives import (
    BLOCK_SIZE_MAX,
    BLOCK_TXS_MAX,
    CHAIN_ID_PATTERN,
    TX_SIZE_MAX,
    U64,
    ChainIdField,
    Name,
    PublicKeyBytes,
)
from chaincity.types.validators import Validator, ValidatorSet

GENESIS_FILE_TYPE = "chaincity-genesis"
GENESIS_FORMAT_VERSION = 1
GENESIS_FILE_SIZE_MAX = 4 * 1024 * 1024
ORGS_MAX = 64
# Organization and node names become directory names and TLS DNS names.
SAFE_NAME_PATTERN = CHAIN_ID_PATTERN
SafeName = Annotated[str, Meta(pattern=SAFE_NAME_PATTERN)]
PemText = Annotated[str, Meta(min_length=1, max_length=PEM_SIZE_MAX)]


class OrgInfo(msgspec.Struct, array_like=True, frozen=True):
    name: SafeName
    ca_public_key: PublicKeyBytes  # member CA, in the network's suite
    tls_ca_cert_pem: PemText  # transport CA, X.509 ECDSA P-256


class ChainParams(msgspec.Struct, array_like=True, frozen=True):
    block_txs_max: Annotated[int, Meta(ge=1, le=BLOCK_TXS_MAX)] = 5_000
    block_size_bytes_max: Annotated[int, Meta(ge=4096, le=BLOCK_SIZE_MAX)] = 4 * 1024 * 1024
    tx_size_bytes_max: Annotated[int, Meta(ge=256, le=TX_SIZE_MAX)] = TX_SIZE_MAX
    round_timeout_ms: Annotated[int, Meta(ge=50, le=600_000)] = 2_000
    round_timeout_max_ms: Annotated[int, Meta(ge=50, le=3_600_000)] = 30_000
    # How far ahead of the current height a transaction's expiry may be.
    tx_expiry_blocks_max: Annotated[int, Meta(ge=1, le=10_000_000)] = 1_000
    # How many recent state versions a node keeps readable (and provable).
    state_versions_kept: Annotated[int, Meta(ge=1, le=10_000_000)] = 128


class Genesis(msgspec.Struct, array_like=True, frozen=True):
    network_id: ChainIdField  # also the main chain's id
    suite: Name
    genesis_time_ms: U64
    orgs: Annotated[tuple[OrgInfo, ...], Meta(min_length=1, max_length=ORGS_MAX)]
    validators: ValidatorSet
    params: ChainParams

    def org(self, name: str) -> OrgInfo | None:
        for org in self.orgs:
            if org.name == name:
                return org
        return None

    def ca_keys(self) -> dict[str, bytes]:
        """Member CA public keys by organization, for verify_member_cert."""
        return {org.name: org.ca_public_key for org in self.orgs}


def genesis_hash(genesis: Genesis) -> bytes:
    return get_suite(genesis.suite).tagged_hash(Tag.GENESIS, encode(genesis))


# -- the JSON file ------------------------------------------------------------


def dump_genesis(genesis: Genesis) -> bytes:
    doc = {
        "type": GENESIS_FILE_TYPE,
        "version": GENESIS_FORMAT_VERSION,
        "network_id": genesis.network_id,
        "suite": genesis.suite,
        "genesis_time_ms": genesis.genesis_time_ms,
        "orgs": [
            {
                "name": o.name,
                "ca_public_key": o.ca_public_key.hex(),
                "tls_ca_cert_pem": o.tls_ca_cert_pem,
            }
            for o in genesis.orgs
        ],
        "validators": {
            "epoch": genesis.validators.epoch,
            "validators": [
                {"name": v.name, "org": v.org, "public_key": v.public_key.hex()}
                for v in genesis.validators.validators
            ],
        },
        "params": msgspec.structs.asdict(genesis.params),
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


class _OrgDoc(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    ca_public_key: str
    tls_ca_cert_pem: str


class _ValidatorDoc(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    org: str
    public_key: str


class _ValidatorSetDoc(msgspec.Struct, forbid_unknown_fields=True):
    epoch: int
    validators: list[_ValidatorDoc]


def _params_doc_type() -> Any:
    """ChainParams as a JSON object with the same fields, bounds and defaults."""
    fields = [(f.name, f.type, f.default) for f in msgspec.structs.fields(ChainParams)]
    return msgspec.defstruct("_ParamsDoc", fields, forbid_unknown_fields=True)


_ParamsDoc = _params_doc_type()


class _GenesisDoc(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    version: int
    network_id: str
    suite: str
    genesis_time_ms: int
    orgs: list[_OrgDoc]
    validators: _ValidatorSetDoc
    params: _ParamsDoc  # type: ignore[valid-type]


def parse_genesis(data: bytes, source: str) -> Genesis:
    """Parse and check a genesis file; raises ConfigError('<source>: <problem>')."""
    if len(data) > GENESIS_FILE_SIZE_MAX:
        raise ConfigError(f"{source}: larger than {GENESIS_FILE_SIZE_MAX} bytes")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    try:
        doc = msgspec.json.decode(text, type=_GenesisDoc)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if doc.type != GENESIS_FILE_TYPE:
        raise ConfigError(f"{source}: not a chaincity genesis file")
    if doc.version != GENESIS_FORMAT_VERSION:
        raise ConfigError(f"{source}: unsupported genesis format version {doc.version}")
    try:
        genesis = _genesis_from_doc(doc)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    check_genesis(genesis, source)
    return genesis


def _genesis_from_doc(doc: _GenesisDoc) -> Genesis:
    orgs = tuple(
        OrgInfo(o.name, _hex(o.ca_public_key, f"org {o.name!r} ca_public_key"), o.tls_ca_cert_pem)
        for o in doc.orgs
    )
    validators = tuple(
        Validator(v.name, v.org, _hex(v.public_key, f"validator {v.name!r} public_key"))
        for v in doc.validators.validators
    )
    params = ChainParams(**msgspec.structs.asdict(doc.params))
    return Genesis(
        doc.network_id,
        doc.suite,
        doc.genesis_time_ms,
        orgs,
        ValidatorSet(doc.validators.epoch, validators),
        params,
    )


def _hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"{what} is not hex") from None


def check_genesis(genesis: Genesis, source: str) -> None:
    """Every bound, every key, and the relations between the parts."""
    try:
        decode(encode(genesis), Genesis)
    except (ValueError, OverflowError, TypeError, msgspec.EncodeError) as exc:
        raise ConfigError(f"{source}: {exc}") from None
    try:
        suite = get_suite(genesis.suite)
    except (CryptoError, ImportError) as exc:
        raise ConfigError(f"{source}: suite {genesis.suite!r} is not available ({exc})") from None
    problem = _genesis_problem(genesis, suite)
    if problem:
        raise ConfigError(f"{source}: {problem}")


def _genesis_problem(genesis: Genesis, suite: CryptoSuite) -> str | None:
    return (
        _orgs_problem(genesis.orgs, suite)
        or _validators_problem(genesis, suite)
        or _params_problem(genesis.params)
    )


def _orgs_problem(orgs: tuple[OrgInfo, ...], suite: CryptoSuite) -> str | None:
    names = [o.name for o in orgs]
    if len(set(names)) != len(names):
        return "organization names are not unique"
    for org in orgs:
        if not suite.is_valid_public_key(org.ca_public_key):
            return f"org {org.name!r}: ca_public_key is not a valid {suite.name} key"
        try:
            cert = load_cert(org.tls_ca_cert_pem.encode(), f"org {org.name!r} tls_ca_cert_pem")
        except TransportCertError as exc:
            return str(exc)
        if cert_org(cert) != org.name:
            return f"org {org.name!r}: transport CA certificate names another organization"
        if not is_ca_cert(cert):
            return f"org {org.name!r}: transport CA certificate is not a CA certificate"
    return None


def _validators_problem(genesis: Genesis, suite: CryptoSuite) -> str | None:
    vset = genesis.validators
    if vset.epoch != 0:
        return "the genesis validator set must have epoch 0"
    names = [v.name for v in vset.validators]
    keys = [v.public_key for v in vset.validators]
    if len(set(names)) != len(names):
        return "validator names are not unique"
    if len(set(keys)) != len(keys):
        return "two validators share a public key"
    org_names = {o.name for o in genesis.orgs}
    for v in vset.validators:
        if v.org not in org_names:
            return f"validator {v.name!r} belongs to unknown org {v.org!r}"
        if not suite.is_valid_public_key(v.public_key):
            return f"validator {v.name!r}: public_key is not a valid {suite.name} key"
        if not _is_safe_name(v.name):
            return f"validator name {v.name!r} must match {SAFE_NAME_PATTERN}"
    return None


def _params_problem(params: ChainParams) -> str | None:
    if params.tx_size_bytes_max > params.block_size_bytes_max:
        return "params: tx_size_bytes_max exceeds block_size_bytes_max"
    if params.round_timeout_max_ms < params.round_timeout_ms:
        return "params: round_timeout_max_ms is below round_timeout_ms"
    return None


def _is_safe_name(name: str) -> bool:
    try:
        msgspec.convert(name, SafeName)
    except msgspec.ValidationError:
        return False
    return True


def load_genesis(path: str) -> Genesis:
    try:
        with open(path, "rb") as f:
            data = f.read(GENESIS_FILE_SIZE_MAX + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_genesis(data, path)
