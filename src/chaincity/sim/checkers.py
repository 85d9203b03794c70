"""Invariant checkers that watch the simulated validators from outside.

They see only what leaves a validator (votes, commits, epoch changes) and
what it made durable, and judge it against their own knowledge of the
validator sets; they never ask the code under test whether it is right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chaincity.codec import encode
from chaincity.crypto import CryptoSuite
from chaincity.types.block import block_hash
from chaincity.types.consensus import (
    EpochChangeCert,
    Proposal,
    QuorumCert,
    SafetyData,
    VoteData,
    verify_commit_certificate,
    verify_epoch_change,
)
from chaincity.types.validators import ValidatorSet

VIOLATIONS_MAX = 20


@dataclass
class Checkers:
    suite: CryptoSuite
    chain_id: str
    vsets: dict[int, ValidatorSet]  # the checker's own copy, by epoch
    violations: list[str] = field(default_factory=list)
    committed: dict[int, bytes] = field(default_factory=dict)  # height -> hash, any honest node
    chains: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # node -> (height, hash)
    votes: dict[tuple[int, int, int], VoteData] = field(default_factory=dict)
    _certs_ok: dict[tuple[bytes, bytes], bool] = field(default_factory=dict)

    def fail(self, text: str) -> None:
        if len(self.violations) < VIOLATIONS_MAX:
            self.violations.append(text)

    def start_chain(self, node: int, height: int, h: bytes) -> None:
        self.chains[node] = (height, h)

    def on_commit(
        self, node: int, proposals: tuple[Proposal, ...], cert: QuorumCert, now_ms: int
    ) -> None:
        height, tip = self.chains[node]
        for p in proposals:
            hdr = p.block.header
            bh = block_hash(self.suite, hdr)
            if hdr.height != height + 1 or hdr.parent_hash != tip:
                self.fail(
                    f"t={now_ms} node {node} committed height {hdr.height} "
                    f"not extending its chain at {height}"
                )
            seen = self.committed.setdefault(hdr.height, bh)
            if seen != bh:
                self.fail(
                    f"t={now_ms} node {node} committed {bh.hex()[:12]} at height "
                    f"{hdr.height}, another honest node committed {seen.hex()[:12]}"
                )
            height, tip = hdr.height, bh
        self.chains[node] = (height, tip)
        self._check_cert(node, proposals[-1], cert, now_ms)

    def _check_cert(self, node: int, last: Proposal, cert: QuorumCert, now_ms: int) -> None:
        header = last.block.header
        key = (encode(cert), encode(header))
        ok = self._certs_ok.get(key)
        if ok is None:
            vset = self.vsets.get(cert.data.epoch)
            ok = vset is not None and verify_commit_certificate(
                self.suite, self.chain_id, vset, header, cert
            )
            self._certs_ok[key] = ok
        if not ok:
            self.fail(
                f"t={now_ms} node {node} committed height {header.height} "
                f"without a valid commit certificate"
            )

    def on_epoch_change(self, node: int, change: EpochChangeCert, now_ms: int) -> None:
        old = self.vsets.get(change.cert.data.epoch)
        new = self.vsets.get(change.cert.data.epoch + 1)
        if old is None or new != change.next_set:
            self.fail(f"t={now_ms} node {node} moved to an unexpected validator set")
        elif not verify_epoch_change(self.suite, self.chain_id, old, change):
            self.fail(f"t={now_ms} node {node} produced an invalid epoch-change certificate")

    def on_vote_sent(
        self, node: int, data: VoteData, durable: SafetyData | None, now_ms: int
    ) -> None:
        if (
            durable is None
            or durable.epoch != data.epoch
            or (durable.highest_vote_round < data.round)
        ):
            self.fail(
                f"t={now_ms} node {node} sent a vote for epoch {data.epoch} round "
                f"{data.round} before its safety data was durable"
            )
        key = (node, data.epoch, data.round)
        prior = self.votes.setdefault(key, data)
        if prior != data:
            self.fail(
                f"t={now_ms} node {node} signed two different votes in epoch "
                f"{data.epoch} round {data.round}"
            )
