"""Proof bundles: a record plus everything a third party needs to check it offline.

A bundle holds the record (contract, key, value or absence), its state proof
against a state root, the committed header that attests that root, the headers
that link it to a block named by a commit certificate, that certificate, and
any epoch-change certificates from the trusted validator set to the one that
signed. :func:`verify_bundle` checks all of it with no database and no network:
only the suite and a validator set the verifier trusts (from genesis).
"""

from __future__ import annotations

import itertools
from typing import Annotated

import msgspec
from msgspec import Meta

from chaincity.codec import CodecError, decode, encode
from chaincity.crypto import CryptoError, get_suite
from chaincity.state import StateError, decode_proof, namespaced_key, verify_state_proof
from chaincity.types.block import BlockHeader, block_hash
from chaincity.types.consensus import (
    EpochChangeCert,
    QuorumCert,
    verify_commit_certificate,
    verify_epoch_change,
)
from chaincity.types.primitives import ChainIdField, Name
from chaincity.types.validators import ValidatorSet, validator_set_hash

BUNDLE_TYPE = "chaincity-proof-bundle"
BUNDLE_SIZE_MAX = 4 * 1024 * 1024
HEADERS_MAX = 64
EPOCH_CHANGES_MAX = 1024


class BundleError(ValueError):
    """The bundle does not prove what it claims; the message says which check failed."""


class ProofBundle(msgspec.Struct, array_like=True, frozen=True):
    chain_id: ChainIdField
    suite: Name
    contract: Name
    key: Annotated[bytes, Meta(max_length=256)]
    value: Annotated[bytes, Meta(max_length=64 * 1024)] | None  # None proves absence
    state_proof: Annotated[bytes, Meta(max_length=64 * 1024)]
    # headers[0] attests the state root; each next header is its child; the
    # certificate names the last one.
    headers: Annotated[tuple[BlockHeader, ...], Meta(min_length=1, max_length=HEADERS_MAX)]
    cert: QuorumCert
    validators: ValidatorSet  # the set that signed ``cert`` (reached via epoch_changes)
    epoch_changes: Annotated[tuple[EpochChangeCert, ...], Meta(max_length=EPOCH_CHANGES_MAX)]


class VerifiedRecord(msgspec.Struct, frozen=True):
    chain_id: str
    contract: str
    key: bytes
    value: bytes | None
    state_height: int  # the height whose execution result holds this value
    certified_height: int
    epoch: int


def encode_bundle(bundle: ProofBundle) -> bytes:
    return encode(bundle)


def decode_bundle(data: bytes) -> ProofBundle:
    try:
        return decode(data, ProofBundle, size_max=BUNDLE_SIZE_MAX)
    except CodecError as exc:
        raise BundleError(f"not a proof bundle: {exc}") from None


def verify_bundle(bundle: ProofBundle, trusted: ValidatorSet) -> VerifiedRecord:
    """Check a bundle against a validator set the verifier trusts; raise BundleError."""
    try:
        suite = get_suite(bundle.suite)
    except CryptoError as exc:
        raise BundleError(str(exc)) from None
    vset = _follow_epoch_changes(bundle, trusted)
    if encode(vset) != encode(bundle.validators):
        raise BundleError("the bundle's validator set is not the one its epoch changes lead to")
    headers = bundle.headers
    for parent, child in itertools.pairwise(headers):
        if child.parent_hash != block_hash(suite, parent) or child.height != parent.height + 1:
            raise BundleError(f"header {child.height} does not follow header {parent.height}")
    last = headers[-1]
    if not verify_commit_certificate(suite, bundle.chain_id, vset, last, bundle.cert):
        raise BundleError(
            f"commit certificate does not prove block {last.height} "
            f"(epoch {vset.epoch}, {vset.quorum} of {vset.size} signatures needed)"
        )
    attesting = headers[0]
    try:
        full_key = namespaced_key(bundle.contract, bundle.key)
        proof = decode_proof(bundle.state_proof)
    except (StateError, CodecError) as exc:
        raise BundleError(f"state proof is malformed: {exc}") from None
    if not verify_state_proof(suite, attesting.state_root, full_key, bundle.value, proof):
        raise BundleError("state proof does not match the attested state root")
    return VerifiedRecord(
        bundle.chain_id,
        bundle.contract,
        bundle.key,
        bundle.value,
        attesting.exec_height,
        last.height,
        vset.epoch,
    )


def _follow_epoch_changes(bundle: ProofBundle, trusted: ValidatorSet) -> ValidatorSet:
    suite = get_suite(bundle.suite)
    vset = trusted
    for change in bundle.epoch_changes:
        if not verify_epoch_change(suite, bundle.chain_id, vset, change):
            raise BundleError(f"epoch change to epoch {change.next_set.epoch} does not verify")
        vset = change.next_set
    return vset


def validators_fingerprint(bundle_suite: str, vset: ValidatorSet) -> str:
    """A short hex fingerprint of a validator set, for people to compare."""
    return validator_set_hash(get_suite(bundle_suite), vset).hex()[:16]
