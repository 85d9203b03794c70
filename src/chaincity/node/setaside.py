"""Which pooled transactions are in blocks that may still commit.

A transaction in an uncommitted block is *set aside* (ready -> proposed in the
mempool) so that no later proposal repeats it, and given back (requeued) as soon
as that block can no longer commit: a block at or below the committed round
that did not commit, or a block off the branch a proposal extends.

A transaction that reaches this pool only after the block carrying it is not
held back (it may be proposed again; the executor skips the later copy).
Holding those back too cut latency in benchmarks but left some transactions
uncommitted in two runs out of six, so it waits for a proof of why.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from chaincity.mempool import Mempool
from chaincity.types.consensus import Proposal


class SetAside:
    def __init__(self, mempool: Mempool) -> None:
        self._mempool = mempool
        self._by_round: dict[int, list[bytes]] = {}  # round -> pooled tx ids of its blocks
        self.committed_round = 0

    def taken(self, round_: int, tids: Iterable[bytes]) -> None:
        """Our own proposal for ``round_`` took these from the pool."""
        self._by_round.setdefault(round_, []).extend(tids)

    def block_seen(self, proposal: Proposal) -> None:
        block = proposal.block
        self.taken(block.header.round, self._mempool.set_aside(block.txs))

    def keep_only_branch(self, rounds_on_branch: Collection[int]) -> None:
        """Before proposing: give back what blocks off the extended branch hold.
        (Should such a block commit after all, the executor skips repeats.)"""
        for r in [r for r in self._by_round if r not in rounds_on_branch]:
            self._mempool.requeue(self._by_round.pop(r))

    def committed(self, round_: int) -> None:
        self.committed_round = max(self.committed_round, round_)
        self.requeue_settled()

    def requeue_settled(self) -> None:
        """Nothing stays set aside for a block that can no longer commit."""
        for r in [r for r in self._by_round if r <= self.committed_round]:
            self._mempool.requeue(self._by_round.pop(r))

    def __bool__(self) -> bool:
        return bool(self._by_round)
