"""Deliberately broken safety rules, to show the simulator's checkers can fail."""

from __future__ import annotations

from chaincity.consensus.events import Action, PersistSafety
from chaincity.consensus.rules import SafetyRules
from chaincity.types.consensus import SafetyData, TimeoutCert
from chaincity.types.validators import ValidatorSet


class SkipLockRules(SafetyRules):
    """After a timeout, extend any QC, not only one at least as high as the TC reports."""

    def is_safe_to_extend(self, block_round: int, qc_round: int, tc: TimeoutCert | None) -> bool:
        return tc is not None and block_round == tc.round + 1


class ForgetPersistRules(SafetyRules):
    """Send the vote without making the safety data durable first."""

    def persist_then_send(self, persist: PersistSafety, send: Action) -> list[Action]:
        return [send]


class WeakQuorumRules(SafetyRules):
    """Accept certificates with one signature fewer than a quorum."""

    def quorum(self, vset: ValidatorSet) -> int:
        return max(1, vset.quorum - 1)


class VoteTwiceRules(SafetyRules):
    """Forget the vote already cast in this round."""

    def is_safe_to_vote(
        self, safety: SafetyData, block_round: int, qc_round: int, tc: TimeoutCert | None
    ) -> bool:
        free = SafetyData(safety.epoch, 0, 0, safety.highest_qc, safety.last_tc)
        return super().is_safe_to_vote(free, block_round, qc_round, tc)
