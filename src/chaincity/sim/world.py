"""The simulated world: validators, a network, faults and simulated time.

Everything random comes from one ``random.Random(seed)``; the event queue is
ordered by (time, sequence number), so one seed gives one history, exactly.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from chaincity.codec import CodecError, encode
from chaincity.consensus.core import ConsensusCore, CoreConfig, Recovery
from chaincity.consensus.events import (
    Action,
    BlockFetched,
    Broadcast,
    Commit,
    Event,
    ExecutionResultReady,
    FetchBlock,
    MessageReceived,
    PayloadReady,
    PersistBlock,
    PersistSafety,
    RequestPayload,
    SendTo,
    SetTimer,
    Start,
    TimerFired,
)
from chaincity.consensus.messages import decode_message
from chaincity.consensus.rules import SafetyRules
from chaincity.consensus.verify import SignatureCache
from chaincity.crypto import get_suite
from chaincity.sim.byzantine import Byzantine
from chaincity.sim.checkers import Checkers
from chaincity.sim.config import SimConfig
from chaincity.types.block import Block, BlockHeader, block_hash
from chaincity.types.consensus import (
    EpochChangeCert,
    ExecResult,
    Proposal,
    QuorumCert,
    SafetyData,
    Vote,
)
from chaincity.types.validators import Validator, ValidatorSet

CHAIN_ID = "sim"
RECONFIG_TX = b"reconfigure"
EVENTS_MAX = 2_000_000  # a run that needs more is a bug in itself
RECENT_EXEC_MAX = 64

RulesFactory = Callable[[int], SafetyRules]


def sim_key(i: int) -> bytes:
    return hashlib.sha256(b"chaincity-sim-key-" + str(i).encode()).digest()


@dataclass
class Node:
    index: int
    key: bytes
    core: ConsensusCore | None = None
    durable: SafetyData | None = None
    ledger: list[Proposal] = field(default_factory=list)
    by_hash: dict[bytes, Proposal] = field(default_factory=dict)
    last_cert: QuorumCert | None = None
    vset_epoch: int = 0
    executed: list[ExecResult] = field(default_factory=list)
    block_store: dict[bytes, Proposal] = field(default_factory=dict)  # durable, uncommitted
    epoch_changes: list[EpochChangeCert] = field(default_factory=list)  # durable, with commits
    byzantine: Byzantine | None = None
    timer_gen: int = 0
    life: int = 0  # bumps at each crash, voiding the dead life's pending events
    crash_pending: bool = False
    exec_free_ms: int = 0

    @property
    def up(self) -> bool:
        return self.core is not None


@dataclass(frozen=True, slots=True)
class Delivery:
    src: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Timer:
    gen: int  # only the newest timer of a node fires, like a real single timer
    event: TimerFired


EVENT_TYPES = (Start, MessageReceived, TimerFired, PayloadReady, BlockFetched, ExecutionResultReady)
Payload = Delivery | Timer | Event | list[set[int]] | None


@dataclass(order=True)
class Scheduled:
    time_ms: int
    seq: int
    kind: str = field(compare=False)
    node: int = field(compare=False)
    life: int = field(compare=False)
    payload: Payload = field(compare=False)


class World:
    def __init__(
        self, config: SimConfig, seed: int, rules_factory: RulesFactory | None = None
    ) -> None:
        self.config = config
        self.seed = seed
        self.rng = random.Random(seed)
        self.suite = get_suite("ed25519-sha256")
        self.cache = SignatureCache(self.suite)
        self.rules_factory = rules_factory or (lambda i: SafetyRules())
        self.now_ms = 0
        self.seq = 0
        self.queue: list[Scheduled] = []
        self.events_run = 0
        self.stats: Counter[str] = Counter()
        n = config.n
        self.nodes = [Node(i, sim_key(i)) for i in range(n)]
        self.keys = {self.suite.public_key(nd.key): i for i, nd in enumerate(self.nodes)}
        self.vsets: dict[int, ValidatorSet] = {}
        self.genesis = self._genesis_header()
        self.genesis_exec = ExecResult(0, self._h(b"genesis-state"), self._h(b"genesis-receipts"))
        self.checkers = Checkers(self.suite, CHAIN_ID, self.vsets)
        self.groups: list[set[int]] | None = None
        self.heal_ms = config.faulty_phase_ms
        self.latencies: list[tuple[int, int]] = []  # (ms, rounds) from proposal to commit
        self._first_commit: set[bytes] = set()
        byz = self.rng.sample(range(n), config.byzantine) if config.byzantine > 0 else []
        self.byzantine = frozenset(byz)
        for i in byz:
            k = self.rng.randint(1, len(config.behaviours)) if config.behaviours else 0
            picked = tuple(self.rng.sample(config.behaviours, k))
            self.nodes[i].byzantine = Byzantine(random.Random(self.rng.getrandbits(64)), picked)

    # ------------------------------------------------------------ set-up

    def _h(self, data: bytes) -> bytes:
        return self.suite.hash(data)

    def vset(self, epoch: int) -> ValidatorSet:
        """Epoch e's set: the same validators, rotated by e (so indices change)."""
        vs = self.vsets.get(epoch)
        if vs is None:
            members = [
                Validator(f"v{i}", f"org{i}", self.suite.public_key(nd.key))
                for i, nd in enumerate(self.nodes)
            ]
            k = epoch % len(members)
            vs = ValidatorSet(epoch, tuple(members[k:] + members[:k]))
            self.vsets[epoch] = vs
        return vs

    def _genesis_header(self) -> BlockHeader:
        return BlockHeader(
            CHAIN_ID,
            0,
            0,
            0,
            b"",
            b"",
            0,
            self._h(b"genesis-state"),
            self._h(b"genesis-receipts"),
            0,
            0,
        )

    def next_validators(self, block: Block) -> ValidatorSet | None:
        if RECONFIG_TX in block.txs:
            return self.vset(block.header.epoch + 1)
        return None

    def core_config(self, node: Node) -> CoreConfig:
        return CoreConfig(
            chain_id=CHAIN_ID,
            suite=self.suite,
            private_key=node.key,
            round_timeout_ms=self.config.round_timeout_ms,
            next_validators=self.next_validators,
        )

    def start_node(self, node: Node) -> None:
        tip = node.ledger[-1].block.header if node.ledger else self.genesis
        executed = node.executed or [self.genesis_exec]
        recovery = Recovery(
            vset=self.vset(node.vset_epoch),
            safety=node.durable,
            root=tip,
            root_cert=node.last_cert,
            exec_results=tuple(executed[-RECENT_EXEC_MAX:]),
            blocks=tuple(node.block_store.values()),
            epoch_changes=tuple(node.epoch_changes),
        )
        node.core = ConsensusCore(
            self.core_config(node), recovery, self.rules_factory(node.index), self.cache
        )
        self.deliver(node, Start())

    # ------------------------------------------------------------ scheduling

    def schedule(self, delay_ms: int, kind: str, node: int, payload: Payload) -> None:
        self.seq += 1
        life = self.nodes[node].life if node >= 0 else 0
        heapq.heappush(
            self.queue, Scheduled(self.now_ms + delay_ms, self.seq, kind, node, life, payload)
        )

    def is_faulty_phase(self) -> bool:
        return self.now_ms < self.heal_ms

    def delay_ms(self) -> int:
        hi = (
            self.config.delay_ms_max
            if self.is_faulty_phase()
            else min(self.config.delay_ms_max, 30)
        )
        return self.rng.randint(self.config.delay_ms_min, hi)

    def is_cut(self, a: int, b: int) -> bool:
        if self.groups is None or a == b:
            return False
        return not any(a in g and b in g for g in self.groups)

    def send(self, src: int, dst: int, data: bytes) -> None:
        self.stats["messages"] += 1
        if self.is_cut(src, dst):
            self.stats["cut"] += 1
            return
        if self.is_faulty_phase() and src != dst:
            if self.rng.random() < self.config.drop_rate:
                self.stats["dropped"] += 1
                return
            if self.rng.random() < self.config.duplicate_rate:
                self.schedule(self.delay_ms(), "msg", dst, Delivery(src, data))
        self.schedule(self.delay_ms() if src != dst else 0, "msg", dst, Delivery(src, data))

    # ------------------------------------------------------------ running events

    def deliver(self, node: Node, event: Event) -> None:
        core = node.core
        if core is None:
            return
        actions = core.handle(event)
        if node.byzantine is not None:
            actions = node.byzantine.transform(core, actions)
        if node.crash_pending:
            # Crash part-way through carrying the actions out.
            actions = actions[: self.rng.randint(0, len(actions))]
        for action in actions:
            self.carry_out(node, action)
        if node.crash_pending:
            self.crash(node)

    def carry_out(self, node: Node, action: Action) -> None:
        core = node.core
        assert core is not None
        if isinstance(action, SendTo):
            self.check_vote(node, action.data)
            dst = self.node_of(core.vset, action.to)
            if dst is not None:
                self.send(node.index, dst, action.data)
        elif isinstance(action, Broadcast):
            for v in core.vset.validators:
                dst = self.keys[v.public_key]
                if dst != node.index:
                    self.send(node.index, dst, action.data)
        elif isinstance(action, SetTimer):
            node.timer_gen += 1
            ev = TimerFired(action.epoch, action.round)
            self.schedule(action.duration_ms, "timer", node.index, Timer(node.timer_gen, ev))
        elif isinstance(action, PersistSafety):
            node.durable = action.safety
        elif isinstance(action, PersistBlock):
            node.block_store[block_hash(self.suite, action.proposal.block.header)] = action.proposal
        elif isinstance(action, RequestPayload):
            self.on_request_payload(node, action)
        elif isinstance(action, FetchBlock):
            self.on_fetch(node, action)
        elif isinstance(action, Commit):
            self.on_commit(node, action)

    def node_of(self, vset: ValidatorSet, index: int) -> int | None:
        if not 0 <= index < vset.size:
            return None
        return self.keys[vset.validators[index].public_key]

    def check_vote(self, node: Node, data: bytes) -> None:
        if node.index in self.byzantine:
            return
        try:
            msg = decode_message(data)
        except CodecError:
            return
        if isinstance(msg, Vote):
            self.checkers.on_vote_sent(node.index, msg.data, node.durable, self.now_ms)

    def on_request_payload(self, node: Node, req: RequestPayload) -> None:
        txs: tuple[bytes, ...] = (f"tx:{node.index}:{req.epoch}:{req.round}".encode(),)
        every = self.config.epoch_every_heights
        if every and req.height % every == 0:
            txs = (*txs, RECONFIG_TX)
        ev = PayloadReady(req.epoch, req.round, txs, self.now_ms)
        self.schedule(self.delay_ms(), "event", node.index, ev)  # mempool latency
        self.maybe_isolate(node.index)

    def maybe_isolate(self, leader: int) -> None:
        """Cut a leader off just before it proposes: the QC it just formed (and
        the commit it implies) then stays with it alone for a while."""
        rate = self.config.isolate_leader_rate
        if not rate or self.groups is not None or not self.is_faulty_phase():
            return
        if self.rng.random() < rate:
            rest = set(range(self.config.n)) - {leader}
            self.groups = [{leader}, rest]
            # Long enough for the others to time out without hearing from it.
            t = self.config.round_timeout_ms
            heal_ms = min(self.now_ms + self.rng.randint(t, 4 * t), self.heal_ms)
            self.at(heal_ms, "partition", -1, None)

    def on_fetch(self, node: Node, req: FetchBlock) -> None:
        assert node.core is not None
        peer_index = self.node_of(node.core.vset, req.peer)
        if peer_index is None or self.is_cut(node.index, peer_index):
            return
        peer = self.nodes[peer_index]
        found = peer.by_hash.get(req.block_hash)
        if found is None and peer.core is not None:
            found = peer.core.get_proposal(req.block_hash)
        if found is None or (self.is_faulty_phase() and self.rng.random() < self.config.drop_rate):
            return
        data = encode(found)
        if peer.byzantine is not None and self.rng.random() < 0.3:
            data = data[:-1] + bytes((data[-1] ^ 1,))
        ev = BlockFetched(req.peer, data)
        self.schedule(self.delay_ms() * 2, "event", node.index, ev)

    def on_commit(self, node: Node, commit: Commit) -> None:
        for p in commit.proposals:
            bh = block_hash(self.suite, p.block.header)
            node.ledger.append(p)
            node.by_hash[bh] = p
            if node.index not in self.byzantine and bh not in self._first_commit:
                # The header's timestamp is the simulated time the leader proposed.
                self._first_commit.add(bh)
                rounds = commit.cert.data.round - p.block.header.round
                self.latencies.append((self.now_ms - p.block.header.timestamp_ms, rounds))
            self.schedule_execution(node, p, bh)
        node.last_cert = commit.cert
        top = commit.proposals[-1].block.header.height
        node.block_store = {
            h: p for h, p in node.block_store.items() if p.block.header.height > top
        }
        if node.index not in self.byzantine:
            self.checkers.on_commit(node.index, commit.proposals, commit.cert, self.now_ms)
        change = commit.epoch_change
        if change is not None:
            if node.index not in self.byzantine:
                self.checkers.on_epoch_change(node.index, change, self.now_ms)
            node.vset_epoch = change.next_set.epoch
            node.epoch_changes = [*node.epoch_changes, change][-16:]

    def schedule_execution(self, node: Node, p: Proposal, bh: bytes) -> None:
        """Execution as a pure function of the committed chain, after a seeded delay."""
        prev = node.executed[-1] if node.executed else self.genesis_exec
        if not node.executed:
            node.executed.append(self.genesis_exec)
        height = p.block.header.height
        state = self._h(prev.state_root + bh)
        # Results are computed now, in height order; they are reported later.
        result = ExecResult(height, state, self._h(b"receipts" + bh))
        node.executed.append(result)
        del node.executed[: -RECENT_EXEC_MAX * 4]
        node.exec_free_ms = max(node.exec_free_ms, self.now_ms) + self.rng.randint(
            1, self.config.exec_delay_ms_max
        )
        self.schedule(
            node.exec_free_ms - self.now_ms, "event", node.index, ExecutionResultReady(result)
        )

    # ------------------------------------------------------------ faults

    def crash(self, node: Node) -> None:
        node.crash_pending = False
        node.core = None
        node.life += 1
        self.stats["crashes"] += 1

    def step(self, item: Scheduled) -> None:
        node = self.nodes[item.node] if item.node >= 0 else None
        if node is not None and 0 <= item.life != node.life:
            return  # addressed to a life that has since crashed
        payload = item.payload
        if isinstance(payload, Delivery) and node is not None:
            src, data = payload.src, payload.data
            if node.byzantine is not None:
                node.byzantine.remember(data)
            if node.core is not None:
                sender = node.core.vset.index_of(self.suite.public_key(self.nodes[src].key))
                self.deliver(node, MessageReceived(-1 if sender is None else sender, data))
        elif isinstance(payload, Timer) and node is not None:
            if payload.gen == node.timer_gen:
                self.deliver(node, payload.event)
        elif isinstance(payload, EVENT_TYPES) and node is not None:
            self.deliver(node, payload)
        elif item.kind == "crash" and node is not None and node.up:
            node.crash_pending = True
        elif item.kind == "restart" and node is not None:
            if node.crash_pending:
                self.crash(node)  # it had no event to crash in; crash it now
            if not node.up:
                self.restart(node)
        elif item.kind == "partition" and isinstance(payload, list | None):
            self.groups = payload

    def restart(self, node: Node) -> None:
        """Back from the durable parts only: safety data, ledger and executed results."""
        node.exec_free_ms = self.now_ms
        self.start_node(node)

    def plan_faults(self) -> None:
        cfg = self.config
        honest = [i for i in range(cfg.n) if i not in self.byzantine]
        if cfg.partitions and cfg.n > 1:
            t = 0
            while True:
                t += self.rng.randint(200, 1200)
                if t >= cfg.faulty_phase_ms:
                    break
                members = list(range(cfg.n))
                self.rng.shuffle(members)
                cut = self.rng.randint(1, cfg.n - 1)
                groups = [set(members[:cut]), set(members[cut:])]
                self.at(t, "partition", -1, groups)
                t += self.rng.randint(100, 800)
                self.at(min(t, cfg.faulty_phase_ms), "partition", -1, None)
        self.at(cfg.faulty_phase_ms, "partition", -1, None)
        if cfg.crashes and honest:
            for _ in range(self.rng.randint(1, 4)):
                i = self.rng.choice(honest)
                t = self.rng.randint(0, cfg.faulty_phase_ms - 1)
                self.at(t, "crash", i, None)
                back = min(t + self.rng.randint(50, 1500), cfg.faulty_phase_ms)
                self.at(back, "restart", i, None)

    def at(self, time_ms: int, kind: str, node: int, payload: Payload) -> None:
        self.seq += 1
        heapq.heappush(self.queue, Scheduled(time_ms, self.seq, kind, node, -1, payload))

    # ------------------------------------------------------------ the run

    def run(self) -> tuple[int | None, int]:
        """Run to the liveness deadline; returns (ms from healing to liveness, or
        None if it never came, and the highest committed height)."""
        cfg = self.config
        for node in self.nodes:
            self.checkers.start_chain(node.index, 0, block_hash(self.suite, self.genesis))
        self.plan_faults()
        for node in self.nodes:
            self.start_node(node)
        honest = [nd for nd in self.nodes if nd.index not in self.byzantine]
        deadline = self.heal_ms + cfg.liveness_window_ms
        target: int | None = None
        while self.queue and self.events_run < EVENTS_MAX:
            item = heapq.heappop(self.queue)
            if item.time_ms > deadline:
                break
            self.now_ms = item.time_ms
            if target is None and self.now_ms >= self.heal_ms:
                target = max(len(nd.ledger) for nd in honest) + cfg.liveness_commits
            self.events_run += 1
            self.step(item)
            if target is not None and all(len(nd.ledger) >= target for nd in honest):
                return self.now_ms - self.heal_ms, max(len(nd.ledger) for nd in honest)
        return None, max(len(nd.ledger) for nd in honest)
