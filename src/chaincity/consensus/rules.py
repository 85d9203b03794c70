"""The safety rules (Jolteon / DiemBFT v4, "Safety" module), as pure functions.

They decide whether this validator may vote for a block or time out in a
round, given its durable :class:`SafetyData`. The core calls them through a
:class:`SafetyRules` object so tests can inject a broken variant and show
that the simulator's checkers notice.
"""

from __future__ import annotations

from chaincity.consensus.events import Action, PersistSafety
from chaincity.types.consensus import SafetyData, TimeoutCert
from chaincity.types.validators import ValidatorSet


def is_consecutive(later_round: int, earlier_round: int) -> bool:
    return later_round == earlier_round + 1


class SafetyRules:
    """The rules as the papers state them; subclasses exist only in tests."""

    def quorum(self, vset: ValidatorSet) -> int:
        """Signatures a certificate needs: more than two thirds of the set."""
        return vset.quorum

    def is_safe_to_extend(self, block_round: int, qc_round: int, tc: TimeoutCert | None) -> bool:
        """After a timeout, a block must extend the highest QC any timeout reported:
        this is the lock that keeps a committed block from being forked away."""
        if tc is None or not is_consecutive(block_round, tc.round):
            return False
        return qc_round >= tc.max_high_qc_round()

    def is_safe_to_vote(
        self, safety: SafetyData, block_round: int, qc_round: int, tc: TimeoutCert | None
    ) -> bool:
        # Never vote twice in a round, nor in a round already given up on.
        if block_round <= max(safety.highest_vote_round, qc_round):
            return False
        return is_consecutive(block_round, qc_round) or self.is_safe_to_extend(
            block_round, qc_round, tc
        )

    def is_safe_to_timeout(
        self, safety: SafetyData, round_: int, qc_round: int, tc_round: int
    ) -> bool:
        highest_qc_round = safety.highest_qc.data.round
        if qc_round < highest_qc_round or round_ <= max(safety.highest_vote_round - 1, qc_round):
            return False
        return is_consecutive(round_, qc_round) or is_consecutive(round_, tc_round)

    def persist_then_send(self, persist: PersistSafety, send: Action) -> list[Action]:
        """The order in which a vote's actions leave: durable first (STYLE.md, etcd Ready)."""
        return [persist, send]
