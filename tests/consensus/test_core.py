"""The consensus core driven by hand. Section numbers cite the DiemBFT v4 paper
("DiemBFT v4: State Machine Replication in the Diem Blockchain", 2021) and
Jolteon ("Jolteon and Ditto", Gelashvili et al., 2021)."""

from __future__ import annotations

from chaincity.codec import encode
from chaincity.consensus.core import get_leader
from chaincity.consensus.events import (
    Commit,
    MessageReceived,
    PersistSafety,
    SendTo,
    Start,
    TimerFired,
)
from chaincity.consensus.messages import decode_message
from chaincity.types.block import block_hash
from chaincity.types.consensus import (
    QuorumCert,
    Vote,
    VoteData,
    sign_vote,
    verify_commit_certificate,
)

from .helpers import CHAIN, SUITE, Cluster, key, make_core, make_vset


def test_four_validators_commit_the_same_chain_with_certificates() -> None:
    # 2-chain commit rule (Jolteon §3): a QC on B whose parent is one round
    # earlier commits the parent; its QC is the commit certificate.
    c = Cluster(4)
    c.start()
    c.run(commits_wanted=3)
    chains = [[p.block.header for cm in commits for p in cm.proposals] for commits in c.commits]
    shortest = min(len(ch) for ch in chains)
    assert shortest >= 3
    for ch in chains:
        assert ch[:shortest] == chains[0][:shortest]
    for commit in c.commits[0]:
        last = commit.proposals[-1].block.header
        assert verify_commit_certificate(SUITE, CHAIN, c.vset, last, commit.cert)


def test_safety_data_is_persisted_before_every_vote_leaves() -> None:
    c = Cluster(4)
    c.start()
    c.run(commits_wanted=2)
    votes_seen = 0
    for actions in c.actions:
        durable_round = -1
        for a in actions:
            if isinstance(a, PersistSafety):
                durable_round = a.safety.highest_vote_round
            elif isinstance(a, SendTo):
                msg = decode_message(a.data)
                if isinstance(msg, Vote):
                    votes_seen += 1
                    assert durable_round >= msg.data.round
    assert votes_seen > 0


def test_restarted_validator_does_not_vote_again_in_a_round() -> None:
    c = Cluster(4)
    c.start()
    c.run(commits_wanted=1)
    voter = next(i for i in range(4) if c.durable[i] and c.durable[i].highest_vote_round > 0)
    durable = c.durable[voter]
    assert durable is not None
    voted_round = durable.highest_vote_round
    # Find the proposal it voted for and feed it to a restarted core.
    proposal = next(p for p in c.blocks[voter].values() if p.block.header.round == voted_round)
    again = make_core(voter, c.vset, safety=durable)
    again.handle(Start())
    actions = again.handle(MessageReceived(proposal.block.header.proposer, encode(proposal)))
    sent = [decode_message(a.data) for a in actions if isinstance(a, SendTo)]
    assert not any(isinstance(m, Vote) and m.data.round == voted_round for m in sent)


def test_timeouts_form_a_tc_and_the_next_leader_takes_over() -> None:
    # Pacemaker (DiemBFT v4 §4.3): a quorum of timeouts forms a TC, round + 1.
    c = Cluster(4)
    c.down.add(get_leader(c.vset, 1))  # the first leader never speaks
    c.start()
    c.run(steps_max=200, commits_wanted=1)
    for i in range(4):
        if i not in c.down:
            c.inbox.append((i, TimerFired(0, 1)))
    c.run(commits_wanted=1)
    live = [i for i in range(4) if i not in c.down]
    assert all(c.cores[i].round > 2 for i in live)
    assert all(c.commits[i] for i in live)


def test_bad_input_is_dropped_and_counted() -> None:
    core = make_core(0, make_vset(4, epoch=1))
    core.handle(Start())

    def vote_data(chain: str = CHAIN, epoch: int = 1) -> VoteData:
        return VoteData(chain, epoch, 1, 1, b"h" * 32, b"p" * 32, 0, 0, b"", b"")

    good = sign_vote(SUITE, key(1), vote_data(), 1)
    cases = {
        "dropped_malformed": b"\x93\x01\x02",
        "dropped_wrong_chain": encode(sign_vote(SUITE, key(1), vote_data(chain="other"), 1)),
        "dropped_old_epoch": encode(sign_vote(SUITE, key(1), vote_data(epoch=0), 1)),
        "dropped_non_validator": encode(Vote(vote_data(), 9, good.signature)),
        "dropped_bad_signature": encode(Vote(vote_data(), 2, good.signature)),
    }
    for counter, payload in cases.items():
        before = core.stats[counter]
        assert core.handle(MessageReceived(1, payload)) == []
        assert core.stats[counter] == before + 1


def test_future_epoch_messages_are_buffered_within_a_bound() -> None:
    core = make_core(0, make_vset(4))
    data = VoteData(CHAIN, 5, 1, 1, b"h" * 32, b"p" * 32, 0, 0, b"", b"")
    payload = encode(sign_vote(SUITE, key(1), data, 1))
    for _ in range(500):
        core.handle(MessageReceived(1, payload))
    assert len(core.future_epoch) <= 64
    assert core.stats["dropped_future_epoch"] == 500


def test_qc_with_too_few_signatures_is_rejected() -> None:
    c = Cluster(4)
    c.start()
    c.run(commits_wanted=1)
    qc = c.cores[0].high_qc
    assert len(qc.signers) >= 3
    short = QuorumCert(qc.data, qc.signers[:2], qc.signatures[:2])
    fresh = make_core(3, c.vset)
    assert not fresh._is_valid_qc(short)
    assert fresh._is_valid_qc(qc)


def test_commit_action_carries_blocks_in_height_order() -> None:
    c = Cluster(4)
    c.start()
    c.run(commits_wanted=3)
    heights = [p.block.header.height for cm in c.commits[1] for p in cm.proposals]
    assert heights == list(range(1, len(heights) + 1))
    parent = None
    for cm in c.commits[1]:
        assert isinstance(cm, Commit)
        for p in cm.proposals:
            if parent is not None:
                assert p.block.header.parent_hash == parent
            parent = block_hash(SUITE, p.block.header)
