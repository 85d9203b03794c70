"""Byzantine validators: an honest core whose outgoing actions are tampered with.

Each byzantine validator holds its own key only; whatever it forges is signed
with that key or assembled from signatures it legitimately received.
"""

from __future__ import annotations

import random

from msgspec import structs

from chaincity.codec import CodecError, encode
from chaincity.consensus.core import ConsensusCore, get_leader
from chaincity.consensus.events import Action, Broadcast, SendTo
from chaincity.consensus.messages import decode_message
from chaincity.types.block import Block, block_hash
from chaincity.types.consensus import (
    Proposal,
    QuorumCert,
    Vote,
    VoteData,
    sign_proposal,
    sign_vote,
)

REPLAY_BUFFER_MAX = 64


class Byzantine:
    def __init__(self, rng: random.Random, behaviours: tuple[str, ...]) -> None:
        self.rng = rng
        self.behaviours = frozenset(behaviours)
        self.seen: list[bytes] = []

    def remember(self, data: bytes) -> None:
        if "replay" in self.behaviours:
            if len(self.seen) >= REPLAY_BUFFER_MAX:
                self.seen.pop(self.rng.randrange(len(self.seen)))
            self.seen.append(data)

    def transform(self, core: ConsensusCore, actions: list[Action]) -> list[Action]:
        out: list[Action] = []
        for action in actions:
            if isinstance(action, SendTo | Broadcast):
                out.extend(self._tamper(core, action))
            else:
                out.append(action)
        out.extend(self._noise(core))
        return out

    def _tamper(self, core: ConsensusCore, action: SendTo | Broadcast) -> list[Action]:
        try:
            msg = decode_message(action.data)
        except CodecError:
            return [action]
        if isinstance(msg, Vote):
            return self._tamper_vote(core, action, msg)
        if isinstance(msg, Proposal) and isinstance(action, Broadcast):
            return self._tamper_proposal(core, msg)
        return [action, *self._bad_sig_copy(action)]

    def _tamper_vote(self, core: ConsensusCore, action: Action, vote: Vote) -> list[Action]:
        b = self.behaviours
        if "withhold" in b and self.rng.random() < 0.7:
            return []
        out: list[Action] = [action]
        if "double_vote" in b or "blind_vote" in b:
            fake = structs.replace(vote.data, block_hash=self.rng.randbytes(32))
            forged = sign_vote(core.suite, core.config.private_key, fake, vote.signer)
            for peer in range(core.vset.size):
                out.append(SendTo(peer, encode(forged)))
        return [*out, *self._bad_sig_copy(action)]

    def _tamper_proposal(self, core: ConsensusCore, p: Proposal) -> list[Action]:
        b = self.behaviours
        key = core.config.private_key
        if "trim_qc" in b and len(p.justify.signers) > 1 and self.rng.random() < 0.7:
            qc = p.justify
            keep = max(1, core.vset.quorum - 1)
            trimmed = QuorumCert(qc.data, qc.signers[:keep], qc.signatures[:keep])
            p = sign_proposal(core.suite, key, p.block, trimmed, p.tc)
        out: list[Action] = []
        if "fork" in b and p.tc is not None:
            fork = self._fork(core, p)
            if fork is not None:
                p = fork
                out.extend(self._vote_for(core, fork))
        out.append(Broadcast(encode(p)))
        if "selective" in b and self.rng.random() < 0.7:
            # Only one peer learns the block (and the QC it carries).
            out = [SendTo(self.rng.randrange(core.vset.size), encode(p))]
        if "equivocate" in b and self.rng.random() < 0.7:
            h = p.block.header
            txs = (self.rng.randbytes(8),)
            alt_header = structs.replace(h, payload_hash=core.payload_hash(txs))
            alt = sign_proposal(core.suite, key, Block(alt_header, txs), p.justify, p.tc)
            out = []
            for peer in range(core.vset.size):
                # Some peers get one version, some the other, some both.
                versions = self.rng.choice(((p,), (alt,), (p, alt), (alt, p)))
                out.extend(SendTo(peer, encode(v)) for v in versions)
        return out

    def _vote_for(self, core: ConsensusCore, p: Proposal) -> list[Action]:
        """Back its own fork with its vote, as the 2-chain rule would name it."""
        if core.me is None:
            return []
        h = p.block.header
        j = p.justify.data
        consecutive = j.round > 0 and h.round == j.round + 1
        data = VoteData(
            h.chain_id,
            h.epoch,
            h.round,
            h.height,
            block_hash(core.suite, h),
            h.parent_hash,
            j.round,
            j.height if consecutive else 0,
            j.block_hash if consecutive else b"",
            b"",
        )
        vote = sign_vote(core.suite, core.config.private_key, data, core.me)
        return [SendTo(get_leader(core.vset, h.round + 1), encode(vote))]

    def _fork(self, core: ConsensusCore, p: Proposal) -> Proposal | None:
        """Extend the parent's parent: the attack the lock after a timeout prevents."""
        parent = core.tree.get(p.block.header.parent_hash)
        for _ in range(self.rng.randint(0, 2)):
            # Sometimes reach further back than one block.
            if parent is None:
                return None
            parent = core.tree.get(parent.block.header.parent_hash)
        if parent is None:
            return None
        grand = core.tree.header(parent.block.header.parent_hash)
        if grand is None:
            return None
        h = p.block.header
        header = structs.replace(
            h,
            height=grand.height + 1,
            parent_hash=parent.block.header.parent_hash,
            exec_height=min(h.exec_height, grand.height),
        )
        ex = core.exec_results.get(header.exec_height)
        if ex is None or header.exec_height < grand.exec_height:
            return None
        header = structs.replace(header, state_root=ex.state_root, receipts_root=ex.receipts_root)
        return sign_proposal(
            core.suite, core.config.private_key, Block(header, p.block.txs), parent.justify, p.tc
        )

    def _bad_sig_copy(self, action: SendTo | Broadcast | Action) -> list[Action]:
        if "bad_sig" not in self.behaviours or self.rng.random() > 0.3:
            return []
        if not isinstance(action, SendTo | Broadcast):
            return []
        data = bytearray(action.data)
        # The signature sits at the end of votes, timeouts and proposals' tails;
        # flipping a late byte corrupts it (or makes the bytes malformed).
        data[-3] ^= 0x40
        return [Broadcast(bytes(data))]

    def _noise(self, core: ConsensusCore) -> list[Action]:
        out: list[Action] = []
        b = self.behaviours
        if "replay" in b and self.seen and self.rng.random() < 0.3:
            out.append(Broadcast(self.rng.choice(self.seen)))
        if "malformed" in b and self.rng.random() < 0.1:
            junk = self.rng.randbytes(self.rng.randrange(0, 200))
            if self.seen and self.seen[-1] and self.rng.random() < 0.5:
                old = self.seen[-1]
                junk = old[: self.rng.randrange(len(old))]
            out.append(Broadcast(junk))
        return out
