"""Consensus messages and certificates, and the bytes their signatures cover.

Every signed consensus object carries the chain id and the epoch, and is
signed over tagged canonical bytes (``Tag.VOTE``, ``Tag.TIMEOUT``,
``Tag.PROPOSAL``), so a vote on one chain or epoch is never valid on another.

A vote signs a :class:`VoteData`. When the voted block's parent sits in the
round just before it (the 2-chain commit rule), the vote also names that
parent as ``commit_hash``: a quorum certificate over such data is then, by
itself, the commit certificate of the parent, checkable by a third party with
nothing but the epoch's validator set (DESIGN.md, "Proofs a third party can
check"). When the committed block ends its epoch, the same data names the hash
of the next validator set, which turns the certificate into an epoch-change
certificate.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from chaincity.codec import Tag, encode, tagged
from chaincity.crypto import CryptoSuite
from chaincity.types.block import Block, BlockHeader, block_hash
from chaincity.types.primitives import (
    U16,
    U64,
    VALIDATORS_MAX,
    ChainIdField,
    HashBytes,
    SignatureBytes,
)
from chaincity.types.validators import ValidatorSet, validator_set_hash

Signers = Annotated[tuple[U16, ...], Meta(max_length=VALIDATORS_MAX)]
Signatures = Annotated[tuple[SignatureBytes, ...], Meta(max_length=VALIDATORS_MAX)]
Rounds = Annotated[tuple[U64, ...], Meta(max_length=VALIDATORS_MAX)]


class ExecResult(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """The result of executing the committed chain up to ``height``."""

    height: U64
    state_root: HashBytes
    receipts_root: HashBytes


def header_exec_result(header: BlockHeader) -> ExecResult:
    """The execution result a header attests."""
    return ExecResult(header.exec_height, header.state_root, header.receipts_root)


class VoteData(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """What a vote signs (and so what a quorum certificate certifies)."""

    chain_id: ChainIdField
    epoch: U64
    round: U64
    height: U64
    block_hash: HashBytes
    parent_hash: HashBytes
    parent_round: U64
    commit_height: U64  # 0 and an empty hash when this vote commits nothing
    commit_hash: HashBytes
    next_validators_hash: HashBytes  # empty unless the committed block ends the epoch


def vote_signing_bytes(data: VoteData) -> bytes:
    return tagged(Tag.VOTE, encode(data))


class Vote(msgspec.Struct, array_like=True, frozen=True, tag=1, gc=False):
    data: VoteData
    signer: U16
    signature: SignatureBytes


class QuorumCert(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """Signatures of a quorum over one VoteData; signers sorted and distinct.

    A round-0 certificate with no signatures is the root of an epoch: it is
    valid only if it equals the root the validator computed itself.
    """

    data: VoteData
    signers: Signers
    signatures: Signatures


# A commit certificate is a quorum certificate whose data names the committed
# block in ``commit_hash``; the alias keeps the name the design speaks of.
CommitCertificate = QuorumCert


class TimeoutData(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """What a timeout signs: giving up on ``round``, with the highest QC round known."""

    chain_id: ChainIdField
    epoch: U64
    round: U64
    high_qc_round: U64


def timeout_signing_bytes(data: TimeoutData) -> bytes:
    return tagged(Tag.TIMEOUT, encode(data))


class TimeoutCert(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A quorum of timeouts for one round; each signer signed its own high QC round."""

    chain_id: ChainIdField
    epoch: U64
    round: U64
    signers: Signers
    high_qc_rounds: Rounds
    signatures: Signatures

    def max_high_qc_round(self) -> int:
        return max(self.high_qc_rounds, default=0)


class Timeout(msgspec.Struct, array_like=True, frozen=True, tag=2, gc=False):
    data: TimeoutData
    signer: U16
    signature: SignatureBytes
    high_qc: QuorumCert  # lets a slow validator catch up to the sender's round
    last_tc: TimeoutCert | None  # the TC that led the sender into this round, if any


class ProposalBody(msgspec.Struct, array_like=True, frozen=True, gc=False):
    chain_id: ChainIdField
    epoch: U64
    round: U64
    block_hash: HashBytes


def proposal_signing_bytes(body: ProposalBody) -> bytes:
    return tagged(Tag.PROPOSAL, encode(body))


class Proposal(msgspec.Struct, array_like=True, frozen=True, tag=3, gc=False):
    block: Block
    justify: QuorumCert  # certifies the block's parent
    tc: TimeoutCert | None  # present when the previous round ended in a timeout
    signature: SignatureBytes  # by the header's proposer


class TimeoutCertMsg(msgspec.Struct, array_like=True, frozen=True, tag=4, gc=False):
    tc: TimeoutCert
    high_qc: QuorumCert


class EpochChangeCert(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """Proof for a light client that ``next_set`` follows the set of ``cert.data.epoch``.

    ``header`` is the committed block that ends the old epoch; ``cert`` is its
    commit certificate, signed by the old set, naming the new set's hash.
    """

    header: BlockHeader
    cert: CommitCertificate
    next_set: ValidatorSet


class EpochChangeMsg(msgspec.Struct, array_like=True, frozen=True, tag=5, gc=False):
    change: EpochChangeCert


ConsensusMessage = Vote | Timeout | Proposal | TimeoutCertMsg | EpochChangeMsg


class SafetyData(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """The small struct a validator stores durably before any vote or timeout leaves.

    ``highest_vote_round`` covers timeouts too: after timing out in a round a
    validator never votes in it. The certificates are kept, not just their
    rounds: a restarted validator needs the QC or TC that put it in its round
    to time out there, and it may be the only one that saw them.
    """

    epoch: U64
    highest_vote_round: U64
    highest_timeout_round: U64
    highest_qc: QuorumCert
    last_tc: TimeoutCert | None


def sign_vote(suite: CryptoSuite, key: bytes, data: VoteData, signer: int) -> Vote:
    return Vote(data, signer, suite.sign(key, vote_signing_bytes(data)))


def sign_proposal(
    suite: CryptoSuite, key: bytes, block: Block, justify: QuorumCert, tc: TimeoutCert | None
) -> Proposal:
    h = block.header
    body = ProposalBody(h.chain_id, h.epoch, h.round, block_hash(suite, h))
    return Proposal(block, justify, tc, suite.sign(key, proposal_signing_bytes(body)))


def is_valid_quorum_signatures(
    suite: CryptoSuite,
    vset: ValidatorSet,
    message: bytes,
    signers: tuple[int, ...],
    sigs: tuple[bytes, ...],
) -> bool:
    """A quorum of distinct members of ``vset`` signed ``message`` (no cache: for third parties)."""
    if len(signers) != len(sigs) or len(signers) < vset.quorum:
        return False
    if list(signers) != sorted(set(signers)) or signers[-1] >= vset.size:
        return False
    return all(
        suite.verify(vset.validators[i].public_key, message, s)
        for i, s in zip(signers, sigs, strict=True)
    )


def verify_commit_certificate(
    suite: CryptoSuite, chain_id: str, vset: ValidatorSet, header: BlockHeader, cert: QuorumCert
) -> bool:
    """Whether ``cert`` proves that the block with ``header`` was committed by ``vset``."""
    d = cert.data
    if d.chain_id != chain_id or header.chain_id != chain_id:
        return False
    if d.epoch != vset.epoch or header.epoch != vset.epoch:
        return False
    if d.commit_hash != block_hash(suite, header) or d.commit_height != header.height:
        return False
    return is_valid_quorum_signatures(
        suite, vset, vote_signing_bytes(d), cert.signers, cert.signatures
    )


def verify_epoch_change(
    suite: CryptoSuite, chain_id: str, current: ValidatorSet, change: EpochChangeCert
) -> bool:
    """Whether a light client that trusts ``current`` may move to ``change.next_set``."""
    if change.next_set.epoch != current.epoch + 1:
        return False
    if change.cert.data.next_validators_hash != validator_set_hash(suite, change.next_set):
        return False
    return verify_commit_certificate(suite, chain_id, current, change.header, change.cert)
