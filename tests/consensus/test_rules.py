"""The voting and timeout rules (DiemBFT v4 §5 "Safety"; Jolteon §3), as a table
and in the core, including the lock that a planted bug removes."""

from __future__ import annotations

import pytest

from chaincity.codec import encode
from chaincity.consensus.core import get_leader
from chaincity.consensus.events import MessageReceived, SendTo
from chaincity.consensus.messages import decode_message
from chaincity.consensus.rules import SafetyRules
from chaincity.types.block import Block, BlockHeader
from chaincity.types.consensus import (
    QuorumCert,
    SafetyData,
    TimeoutCert,
    TimeoutData,
    Vote,
    VoteData,
    sign_proposal,
    timeout_signing_bytes,
)

from ..sim.planted import SkipLockRules
from .helpers import CHAIN, SUITE, Cluster, key, make_core

ROOT_QC = QuorumCert(VoteData(CHAIN, 0, 0, 0, b"g", b"", 0, 0, b"", b""), (), ())


def safety(vote_round: int, qc_round: int = 0) -> SafetyData:
    qc = QuorumCert(VoteData(CHAIN, 0, qc_round, 0, b"b", b"", 0, 0, b"", b""), (), ())
    return SafetyData(0, vote_round, 0, qc, None)


def tc(round_: int, high_qc_rounds: tuple[int, ...]) -> TimeoutCert:
    n = len(high_qc_rounds)
    return TimeoutCert(CHAIN, 0, round_, tuple(range(n)), high_qc_rounds, (b"",) * n)


@pytest.mark.parametrize(
    ("vote_round", "block_round", "qc_round", "cert", "expected"),
    [
        (4, 5, 4, None, True),  # extends the QC of the round before
        (5, 5, 4, None, False),  # already voted in this round
        (6, 5, 4, None, False),  # already moved past this round
        (4, 6, 4, None, False),  # gap without a TC
        (4, 6, 4, tc(5, (4, 3, 2)), True),  # after a TC, extends its highest QC
        (4, 6, 3, tc(5, (4, 3, 2)), False),  # after a TC, extends a lower QC: the lock
        (4, 7, 4, tc(5, (4, 3, 2)), False),  # TC not from the round before
    ],
)
def test_safe_to_vote_table(
    vote_round: int, block_round: int, qc_round: int, cert: TimeoutCert | None, expected: bool
) -> None:
    rules = SafetyRules()
    assert rules.is_safe_to_vote(safety(vote_round), block_round, qc_round, cert) is expected


@pytest.mark.parametrize(
    ("vote_round", "locked", "round_", "qc_round", "tc_round", "expected"),
    [
        (4, 4, 5, 4, 0, True),  # QC of the previous round
        (4, 4, 6, 4, 5, True),  # TC of the previous round
        (4, 4, 6, 4, 0, False),  # neither: not in this round legitimately
        (4, 5, 6, 4, 5, False),  # reports a QC lower than one it voted on
        (7, 4, 5, 4, 0, False),  # already voted beyond this round
    ],
)
def test_safe_to_timeout_table(
    vote_round: int, locked: int, round_: int, qc_round: int, tc_round: int, expected: bool
) -> None:
    rules = SafetyRules()
    s = safety(vote_round, locked)
    assert rules.is_safe_to_timeout(s, round_, qc_round, tc_round) is expected


def _fork_after_timeout(rules: SafetyRules) -> list[Vote]:
    """A leader, after a TC, extends the QC below the highest one: validator
    ``me`` either refuses (the lock) or votes for a block that conflicts with
    one a quorum already certified."""
    cluster = Cluster(4)
    cluster.start()
    cluster.run(commits_wanted=2)
    observer = cluster.cores[0]
    high = observer.high_qc
    round_ = observer.round
    leader = get_leader(cluster.vset, round_ + 1)
    me = next(i for i in range(4) if i != leader)
    core = make_core(me, cluster.vset, rules=rules)
    for p in sorted(cluster.blocks[0].values(), key=lambda p: p.block.header.height):
        core.handle(MessageReceived(p.block.header.proposer, encode(p)))
    root_qc = observer.tree.get(high.data.block_hash)
    assert root_qc is not None
    older = root_qc.justify  # certifies the parent of the highest certified block
    signers = tuple(sorted({0, 1, 2, 3} - {me}))
    sigs = tuple(
        SUITE.sign(key(i), timeout_signing_bytes(TimeoutData(CHAIN, 0, round_, high.data.round)))
        for i in signers
    )
    cert = TimeoutCert(CHAIN, 0, round_, signers, (high.data.round,) * 3, sigs)
    parent = observer.tree.header(older.data.block_hash)
    assert parent is not None
    txs = (b"fork",)
    header = BlockHeader(
        CHAIN,
        0,
        parent.height + 1,
        round_ + 1,
        older.data.block_hash,
        core.payload_hash(txs),
        0,
        b"s" * 32,
        b"r" * 32,
        leader,
        10_000,
    )
    fork = sign_proposal(SUITE, key(leader), Block(header, txs), older, cert)
    actions = core.handle(MessageReceived(leader, encode(fork)))
    sent = [decode_message(a.data) for a in actions if isinstance(a, SendTo)]
    return [m for m in sent if isinstance(m, Vote) and m.data.round == round_ + 1]


def test_lock_refuses_a_fork_after_a_timeout() -> None:
    assert _fork_after_timeout(SafetyRules()) == []


def test_without_the_lock_the_fork_gets_a_vote() -> None:
    # Shows the test above can fail: the planted bug votes for the fork.
    assert len(_fork_after_timeout(SkipLockRules())) == 1
