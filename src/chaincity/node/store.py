"""What a chain runtime needs from storage, as a small interface.

The LMDB-backed implementation adapts the ledger and state packages; tests may
use any object with these methods.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from chaincity.execution.executor import StateView
from chaincity.types.block import Block, BlockHeader, Receipt
from chaincity.types.consensus import ExecResult, Proposal, QuorumCert, SafetyData


class ChainStore(Protocol):
    def tip_height(self) -> int:
        """The latest committed (and executed) height; 0 holds the genesis block,
        and -1 means the store is empty."""
        ...

    def block(self, height: int) -> Block | None: ...

    def header(self, height: int) -> BlockHeader | None: ...

    def commit_cert(self, height: int) -> QuorumCert | None:
        """The certificate stored with ``height``: it names this block or a
        descendant committed in the same batch (bound by parent hashes)."""
        ...

    def exec_result(self, height: int) -> ExecResult | None: ...

    def load_safety(self) -> SafetyData | None: ...

    def save_safety(self, safety: SafetyData) -> None:
        """Durable before it returns: a vote may leave right after."""
        ...

    def save_consensus(self, safety: SafetyData | None, blocks: list[Proposal]) -> None:
        """Durably keep safety data and uncommitted proposals together (one write)."""
        ...

    def save_block(self, proposal: Proposal) -> None:
        """Durably keep an uncommitted proposal (before a vote for it leaves)."""
        ...

    def pending_blocks(self) -> list[Proposal]:
        """The kept proposals above the tip, for the consensus core's recovery."""
        ...

    def receipt(self, tx_id: bytes) -> Receipt | None: ...

    def is_committed(self, tx_id: bytes) -> bool: ...

    def committed_among(self, tx_ids: Collection[bytes]) -> set[bytes]:
        """The committed ones among ``tx_ids`` (one lookup for a whole batch)."""
        ...

    def overlay(self) -> StateView:
        """A copy-on-write view over the latest committed state."""
        ...

    def state_root(self, view: StateView) -> bytes:
        """The root the state would have with ``view``'s changes applied."""
        ...

    def commit_block(
        self,
        block: Block,
        receipts: list[Receipt],
        view: StateView,
        cert: QuorumCert | None,
        result: ExecResult,
        consensus: tuple[SafetyData | None, list[Proposal]] | None = None,
    ) -> None:
        """Store block, receipts, state changes, certificate and result in one
        durable transaction; with ``consensus``, also what ``save_consensus`` would
        write (safety data, uncommitted proposals), in the same transaction."""
        ...

    def get_state(self, contract: str, key: bytes, height: int | None = None) -> bytes | None: ...

    def prove_state(self, contract: str, key: bytes, height: int) -> bytes:
        """A canonical state proof of ``key`` (or its absence) at ``height``."""
        ...
