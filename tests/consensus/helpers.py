"""A hand-driven cluster of consensus cores: FIFO delivery, no faults, no simulator."""

from __future__ import annotations

import hashlib
from collections import deque

from chaincity.codec import encode
from chaincity.consensus.core import ConsensusCore, CoreConfig, Recovery
from chaincity.consensus.events import (
    Action,
    BlockFetched,
    Broadcast,
    Commit,
    Event,
    FetchBlock,
    MessageReceived,
    PayloadReady,
    PersistBlock,
    PersistSafety,
    RequestPayload,
    SendTo,
    Start,
)
from chaincity.consensus.rules import SafetyRules
from chaincity.crypto import get_suite
from chaincity.types.block import BlockHeader
from chaincity.types.consensus import ExecResult, Proposal, SafetyData
from chaincity.types.validators import Validator, ValidatorSet

SUITE = get_suite("ed25519-sha256")
CHAIN = "test-chain"


def key(i: int) -> bytes:
    return hashlib.sha256(b"test-key-%d" % i).digest()


def make_vset(n: int, epoch: int = 0) -> ValidatorSet:
    members = tuple(Validator(f"v{i}", f"org{i}", SUITE.public_key(key(i))) for i in range(n))
    return ValidatorSet(epoch, members)


GENESIS = BlockHeader(CHAIN, 0, 0, 0, b"", b"", 0, b"s" * 32, b"r" * 32, 0, 0)
GENESIS_EXEC = ExecResult(0, b"s" * 32, b"r" * 32)


def make_core(
    i: int,
    vset: ValidatorSet,
    safety: SafetyData | None = None,
    rules: SafetyRules | None = None,
) -> ConsensusCore:
    config = CoreConfig(chain_id=CHAIN, suite=SUITE, private_key=key(i))
    recovery = Recovery(vset, safety, GENESIS, None, (GENESIS_EXEC,))
    return ConsensusCore(config, recovery, rules)


class Cluster:
    """Routes every action between cores in order; records what each one did."""

    def __init__(self, n: int) -> None:
        self.vset = make_vset(n)
        self.cores = [make_core(i, self.vset) for i in range(n)]
        self.inbox: deque[tuple[int, Event]] = deque()
        self.actions: list[list[Action]] = [[] for _ in range(n)]
        self.commits: list[list[Commit]] = [[] for _ in range(n)]
        self.durable: list[SafetyData | None] = [None] * n
        self.blocks: list[dict[bytes, Proposal]] = [{} for _ in range(n)]
        self.down: set[int] = set()
        self.now_ms = 0

    def start(self) -> None:
        for i in range(len(self.cores)):
            self.inbox.append((i, Start()))

    def run(self, steps_max: int = 10_000, commits_wanted: int = 3) -> None:
        for _ in range(steps_max):
            if not self.inbox or min(len(c) for c in self.commits) >= commits_wanted:
                return
            i, event = self.inbox.popleft()
            if i not in self.down:
                self.carry_out(i, self.cores[i].handle(event))

    def carry_out(self, i: int, actions: list[Action]) -> None:
        self.actions[i].extend(actions)
        for a in actions:
            if isinstance(a, SendTo):
                self.inbox.append((a.to, MessageReceived(i, a.data)))
            elif isinstance(a, Broadcast):
                for j in range(len(self.cores)):
                    if j != i:
                        self.inbox.append((j, MessageReceived(i, a.data)))
            elif isinstance(a, PersistSafety):
                self.durable[i] = a.safety
            elif isinstance(a, PersistBlock):
                from chaincity.types.block import block_hash

                self.blocks[i][block_hash(SUITE, a.proposal.block.header)] = a.proposal
            elif isinstance(a, RequestPayload):
                self.now_ms += 1
                tx = b"tx-%d" % a.round
                self.inbox.append((i, PayloadReady(a.epoch, a.round, (tx,), self.now_ms)))
            elif isinstance(a, FetchBlock):
                found = self.cores[a.peer].get_proposal(a.block_hash)
                if found is not None:
                    self.inbox.append((i, BlockFetched(a.peer, encode(found))))
            elif isinstance(a, Commit):
                self.commits[i].append(a)
