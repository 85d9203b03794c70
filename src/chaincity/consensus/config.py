"""How a consensus core is configured and recovered, and the pure helpers it shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chaincity.crypto import CryptoSuite
from chaincity.types.block import Block, BlockHeader
from chaincity.types.consensus import (
    ConsensusMessage,
    EpochChangeCert,
    ExecResult,
    Proposal,
    QuorumCert,
    SafetyData,
    Timeout,
    TimeoutCertMsg,
    Vote,
    VoteData,
)
from chaincity.types.validators import ValidatorSet

# Decides from a committed block's content whether it changes the validator set.
# Must be a pure function of the block; governance supplies the real one.
NextValidators = Callable[[Block], ValidatorSet | None]
# Commitment to a block's transactions, and the application's payload check.
PayloadHash = Callable[[tuple[bytes, ...]], bytes]
PayloadCheck = Callable[[Block], bool]


def no_reconfiguration(block: Block) -> ValidatorSet | None:
    return None


def accept_any_payload(block: Block) -> bool:
    return True


@dataclass
class CoreConfig:
    chain_id: str
    suite: CryptoSuite
    private_key: bytes
    round_timeout_ms: int = 1000
    backoff_exponent_max: int = 4
    next_validators: NextValidators = no_reconfiguration
    payload_hash: PayloadHash | None = None
    is_valid_payload: PayloadCheck = accept_any_payload


@dataclass
class Recovery:
    """What a starting validator reloads: safety data and the ledger's tip."""

    vset: ValidatorSet
    safety: SafetyData | None  # None on first start
    root: BlockHeader  # last committed block (the genesis header at first)
    root_cert: QuorumCert | None  # its commit certificate (None for an epoch root)
    exec_results: tuple[ExecResult, ...]  # recent executed results, the latest last
    blocks: tuple[Proposal, ...] = ()  # uncommitted blocks it persisted (PersistBlock)
    # Recent epoch changes from its ledger (Commit.epoch_change), to hand to
    # validators still in an old epoch.
    epoch_changes: tuple[EpochChangeCert, ...] = ()


def get_leader(vset: ValidatorSet, round_: int) -> int:
    """Round-robin, shifted by epoch so a new set does not always start with index 0."""
    return (round_ + vset.epoch) % vset.size


def compute_epoch_root_qc(chain_id: str, epoch: int, root_hash: bytes, height: int) -> QuorumCert:
    data = VoteData(chain_id, epoch, 0, height, root_hash, b"", 0, 0, b"", b"")
    return QuorumCert(data, (), ())


def default_payload_hash(suite: CryptoSuite) -> PayloadHash:
    def compute(txs: tuple[bytes, ...]) -> bytes:
        return suite.tagged_hash(b"chaincity/payload/v1", b"".join(suite.hash(t) for t in txs))

    return compute


def message_scope(msg: ConsensusMessage) -> tuple[str, int]:
    """The chain id and epoch a message claims."""
    if isinstance(msg, Vote | Timeout):
        return msg.data.chain_id, msg.data.epoch
    if isinstance(msg, Proposal):
        return msg.block.header.chain_id, msg.block.header.epoch
    if isinstance(msg, TimeoutCertMsg):
        return msg.tc.chain_id, msg.tc.epoch
    return msg.change.cert.data.chain_id, msg.change.cert.data.epoch
