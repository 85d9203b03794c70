"""What goes into the consensus core (events) and what comes out (actions).

The core never performs I/O: the node (or the simulator) turns each action
into a send, a timer or a write, in the order given. A ``PersistSafety``
always precedes the vote or timeout it protects; the caller must make it
durable before carrying out any later action of the same list.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaincity.types.consensus import (
    EpochChangeCert,
    ExecResult,
    Proposal,
    QuorumCert,
    SafetyData,
)

# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Start:
    """The node is up: enter the first round (or the round after recovery)."""


@dataclass(frozen=True, slots=True)
class MessageReceived:
    sender: int  # index of the authenticated peer in the current validator set, or -1
    data: bytes


@dataclass(frozen=True, slots=True)
class TimerFired:
    epoch: int
    round: int


@dataclass(frozen=True, slots=True)
class PayloadReady:
    epoch: int
    round: int
    txs: tuple[bytes, ...]
    timestamp_ms: int  # the node's clock, passed in as data


@dataclass(frozen=True, slots=True)
class BlockFetched:
    sender: int
    data: bytes  # canonical bytes of the Proposal that carried the block


@dataclass(frozen=True, slots=True)
class ExecutionResultReady:
    result: ExecResult


Event = Start | MessageReceived | TimerFired | PayloadReady | BlockFetched | ExecutionResultReady

# ---------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class SendTo:
    to: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send to every other validator of the current epoch."""

    data: bytes


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Replace the pending round timer: fire TimerFired(epoch, round) after duration_ms."""

    epoch: int
    round: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class PersistSafety:
    safety: SafetyData


@dataclass(frozen=True, slots=True)
class PersistBlock:
    """Keep an uncommitted block: after a restart it may exist nowhere else.

    Like PersistSafety, it must be durable before later actions of the list
    (a vote for it) are carried out. The node gives these back in Recovery.
    """

    proposal: Proposal


@dataclass(frozen=True, slots=True)
class RequestPayload:
    epoch: int
    round: int
    height: int
    parent_hash: bytes


@dataclass(frozen=True, slots=True)
class FetchBlock:
    block_hash: bytes
    peer: int


@dataclass(frozen=True, slots=True)
class Commit:
    """Blocks committed, oldest first; ``cert`` names the last one (its ancestors
    are bound to it by parent hashes)."""

    proposals: tuple[Proposal, ...]
    cert: QuorumCert
    # Set when these blocks end the epoch; the node stores it in the same atomic
    # write as the blocks, so a restart never sees one without the other.
    epoch_change: EpochChangeCert | None = None


@dataclass(frozen=True, slots=True)
class EpochChanged:
    """The epoch just switched (also carried by the Commit before it, for atomic storage)."""

    change: EpochChangeCert


Action = (
    SendTo
    | Broadcast
    | SetTimer
    | PersistSafety
    | PersistBlock
    | RequestPayload
    | FetchBlock
    | Commit
    | EpochChanged
)
