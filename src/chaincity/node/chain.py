"""One chain inside a node: the consensus core plus everything that carries out its actions.

``ChainRuntime`` feeds the core with events (peer messages, timers, payloads,
execution results) and carries out the actions it returns, in order: safety
data is saved durably before any later action of the same list (a vote) goes
out. Committed blocks are executed here, in height order, and stored with
their receipts, state changes and certificate in one durable transaction.

I/O arrives through small interfaces (store, outbox, scheduler, clock) so the
same class runs in the node and under tests. How transactions are admitted
(admission.py) and what the API reads (queries.py) are mixed in from their
own modules.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from chaincity.codec import CodecError, decode, encode
from chaincity.consensus.core import (
    ConsensusCore,
    CoreConfig,
    Recovery,
    default_payload_hash,
)
from chaincity.consensus.events import (
    Action,
    BlockFetched,
    Broadcast,
    Commit,
    EpochChanged,
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
from chaincity.contracts import builtin_registry
from chaincity.crypto import CryptoSuite
from chaincity.execution.executor import BlockExecutor, BlockResult, ExecutionParams
from chaincity.genesis.model import Genesis, genesis_hash
from chaincity.mempool import (
    Mempool,
    MempoolParams,
    SignatureChecker,
)
from chaincity.node.admission import Admission
from chaincity.node.identity import CachedAuthorizer
from chaincity.node.metrics import CpuPhases, Metrics
from chaincity.node.queries import BlockSummary, ChainQueries
from chaincity.node.store import ChainStore
from chaincity.node.sync import SyncTracker
from chaincity.node.wire import BlockRequest, Kind
from chaincity.types.block import Block, BlockHeader
from chaincity.types.consensus import ExecResult, Proposal, QuorumCert, SafetyData

log = logging.getLogger("chaincity.node")


def _next_persist(actions: list[Action | _Persist], at: int) -> _Persist | None:
    """The first consensus write after position ``at`` of a step's actions."""
    return next((a for a in actions[at + 1 :] if isinstance(a, _Persist) and not a.written), None)


TICK_MS = 500  # housekeeping period
IDLE_PROPOSAL_MS = 1_000  # an idle leader proposes an empty block at most this often


@dataclass(slots=True)
class _Persist:
    """A run of persist actions, written in one durable transaction."""

    safety: SafetyData | None
    blocks: list[Proposal]
    written: bool = False  # already written, with a block committed earlier in the step


class Outbox(Protocol):
    """Sends chain-scoped payloads to validators of this chain, by index."""

    def send(self, index: int, kind: Kind, payload: bytes) -> None: ...

    def broadcast(self, kind: Kind, payload: bytes) -> None: ...


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


Scheduler = Callable[[float, Callable[[], None]], TimerHandle]


@dataclass
class ChainDeps:
    genesis: Genesis
    suite: CryptoSuite
    private_key: bytes
    store: ChainStore
    outbox: Outbox
    schedule: Scheduler  # (delay in seconds, callback) -> handle
    now_ms: Callable[[], int]
    metrics: Metrics
    # Where admission checks signatures; None: inline, on the caller's thread.
    signatures: SignatureChecker | None = None
    # The event loop thread's CPU seconds, for chaincity_cpu_seconds_total; by
    # default none is counted.
    cpu_clock: Callable[[], float] = lambda: 0.0


class ChainRuntime(Admission, ChainQueries):
    """Runs one chain: consensus, mempool, execution, sync, and the API's view of it."""

    def __init__(self, chain_id: str, deps: ChainDeps) -> None:
        self.chain_id = chain_id
        self.deps = deps
        g = deps.genesis
        self.suite = deps.suite
        self.store = deps.store
        self._params = g.params
        self.cpu = CpuPhases(deps.metrics, chain_id, deps.cpu_clock)
        authorize = CachedAuthorizer(deps.suite, g.network_id, g.ca_keys())
        self.mempool = Mempool(
            suite=deps.suite,
            chain_id=chain_id,
            authorize=authorize,
            is_committed=deps.store.is_committed,
            params=MempoolParams(expiry_window=g.params.tx_expiry_blocks_max),
            committed_among=deps.store.committed_among,
        )
        self._executor = BlockExecutor(
            suite=deps.suite,
            chain_id=chain_id,
            registry=builtin_registry(),
            authorize=authorize,
            is_committed=self._is_committed,
            params=ExecutionParams(expiry_window=g.params.tx_expiry_blocks_max),
            verify_signature=self._verify_once,
            decoded=self.mempool.pooled,
        )
        self.payload_hash = default_payload_hash(deps.suite)
        self.core: ConsensusCore | None = None
        self.sync = SyncTracker(self)
        self._timer: TimerHandle | None = None
        self._skipped: OrderedDict[bytes, str] = OrderedDict()
        self._submitted_ms: dict[bytes, int] = {}
        self._admission_queue: deque[tuple[int, Callable[[], None]]] = deque()
        self._admission_queued_bytes = 0
        self._admission_scheduled = False
        self._summaries: OrderedDict[int, BlockSummary] = OrderedDict()
        self._commit_event = asyncio.Event()
        self.halted: str | None = None
        self._held: RequestPayload | None = None
        self._idle_timer: TimerHandle | None = None
        self._release_due = False  # the held request is released on the loop's next turn
        self._tick_timer: TimerHandle | None = None
        self._last_tx_height = 0
        self._stopped = False
        self._register_metrics()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._stopped = False
        if self.store.tip_height() < 0:
            self._store_genesis()
        self.core = ConsensusCore(self._core_config(), self._recovery())
        self._feed(Start())
        if self._tick_timer is None:
            self._tick_timer = self.deps.schedule(TICK_MS / 1000, self._tick)

    def _tick(self) -> None:
        """Housekeeping that runs off the clock: catch-up status, leftover gossip."""
        self._tick_timer = self.deps.schedule(TICK_MS / 1000, self._tick)
        if self.halted:
            return
        self.sync.tick()
        self.flush_gossip()

    def _store_genesis(self) -> None:
        """Height 0: a block with no transactions, bound to the genesis file's hash."""
        g = self.deps.genesis
        view = self.store.overlay()
        empty = self._executor.execute_block(view, 0, g.genesis_time_ms, ())
        root = self.store.state_root(view)
        header = BlockHeader(
            chain_id=self.chain_id,
            epoch=g.validators.epoch,
            height=0,
            round=0,
            parent_hash=genesis_hash(g),
            payload_hash=self.payload_hash(()),
            exec_height=0,
            state_root=root,
            receipts_root=empty.receipts_root,
            proposer=0,
            timestamp_ms=g.genesis_time_ms,
        )
        result = ExecResult(0, root, empty.receipts_root)
        self.store.commit_block(Block(header, ()), [], view, None, result)

    def stop(self) -> None:
        # Signature checks still running elsewhere are dropped when they report.
        self._stopped = True
        for timer in (self._timer, self._idle_timer, self._tick_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._idle_timer = self._tick_timer = None
        self._held = None
        self._release_due = False

    def _core_config(self) -> CoreConfig:
        return CoreConfig(
            chain_id=self.chain_id,
            suite=self.suite,
            private_key=self.deps.private_key,
            round_timeout_ms=self._params.round_timeout_ms,
            payload_hash=self.payload_hash,
        )

    def _recovery(self) -> Recovery:
        tip = self.store.tip_height()
        root = self.store.header(tip)
        if root is None:
            raise RuntimeError(f"ledger has no header at its tip height {tip}")
        results = [
            r
            for h in range(max(0, tip - 64), tip + 1)
            if (r := self.store.exec_result(h)) is not None
        ]
        return Recovery(
            vset=self.deps.genesis.validators,
            safety=self.store.load_safety(),
            root=root,
            root_cert=self.store.commit_cert(tip),
            exec_results=tuple(results),
            blocks=tuple(self.store.pending_blocks()),
        )

    def restart_core(self) -> None:
        """Rebuild the core from storage (after a catch-up moved the tip)."""
        for timer in (self._timer, self._idle_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._idle_timer = None
        self._held = None
        self._release_due = False
        self.start()

    # ------------------------------------------------------------ events in

    def on_message(self, sender: int, kind: Kind, payload: bytes) -> None:
        """A chain-scoped payload from the validator at index ``sender``."""
        if self.halted:
            return
        if kind is Kind.CONSENSUS:
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "%s: consensus message of %d bytes from %d", self.chain_id, len(payload), sender
                )
            self._feed(MessageReceived(sender, payload))
        elif kind is Kind.TXS:
            self._on_gossip(payload)
        elif kind is Kind.BLOCK_REQUEST:
            self._on_block_request(sender, payload)
        elif kind is Kind.BLOCK_RESPONSE:
            self._feed(BlockFetched(sender, payload))
        else:
            self.sync.on_message(sender, kind, payload)

    def _feed(self, event: Event) -> None:
        if self.core is None or self.halted:
            return
        queue: list[Event] = [event]
        try:
            while queue and not self.halted:
                with self.cpu.measure("consensus"):
                    actions = self.core.handle(queue.pop(0))
                queue.extend(self._carry_out(actions))
        except Exception as exc:
            # Our own invariant broke (input errors never raise this far): the core
            # and the ledger may now disagree, so this chain stops rather than
            # sign or serve anything more; the ledger keeps what was durable.
            log.exception("%s: internal error; stopping this chain", self.chain_id)
            self.halted = f"internal error: {type(exc).__name__}: {exc}"
            self.stop()

    def _carry_out(self, actions: list[Action]) -> list[Event]:
        follow_up: list[Event] = []
        requests: list[RequestPayload] = []
        merged = self._merge_persists(actions)
        for at, action in enumerate(merged):
            if isinstance(action, _Persist):
                if not action.written:
                    with self.cpu.measure("consensus_write"):
                        self.store.save_consensus(action.safety, action.blocks)
                continue
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s: %s", self.chain_id, _describe(action))
            if isinstance(action, SendTo):
                if self.core is not None and action.to == self.core.me:
                    # A vote for the next round's leader when that leader is us.
                    follow_up.append(MessageReceived(action.to, action.data))
                else:
                    self.deps.outbox.send(action.to, Kind.CONSENSUS, action.data)
            elif isinstance(action, Broadcast):
                self.deps.outbox.broadcast(Kind.CONSENSUS, action.data)
            elif isinstance(action, SetTimer):
                self._set_timer(action)
            elif isinstance(action, RequestPayload):
                # After the step's commits: their transactions have left the pool.
                requests.append(action)
            elif isinstance(action, FetchBlock):
                self._fetch(action)
            elif isinstance(action, Commit):
                follow_up.extend(self._commit(action, _next_persist(merged, at)))
            elif isinstance(action, EpochChanged):
                log.info("%s: epoch %d begins", self.chain_id, action.change.next_set.epoch)
        for request in requests:
            follow_up.extend(self._on_payload_request(request))
        return follow_up

    @staticmethod
    def _merge_persists(actions: list[Action]) -> list[Action | _Persist]:
        """Consecutive PersistSafety/PersistBlock actions become one durable write:
        nothing is sent between them, so one fsync protects the whole run."""
        out: list[Action | _Persist] = []
        for action in actions:
            if isinstance(action, PersistSafety | PersistBlock):
                run = out[-1] if out and isinstance(out[-1], _Persist) else None
                if run is None:
                    run = _Persist(None, [])
                    out.append(run)
                if isinstance(action, PersistSafety):
                    run.safety = action.safety  # the latest safety data supersedes
                else:
                    run.blocks.append(action.proposal)
            else:
                out.append(action)
        return out

    def _set_timer(self, action: SetTimer) -> None:
        if self._timer is not None:
            self._timer.cancel()
        event = TimerFired(action.epoch, action.round)
        self._timer = self.deps.schedule(action.duration_ms / 1000, lambda: self._feed(event))
        self.deps.metrics.inc("chaincity_round_timers_total", chain=self.chain_id)

    def _on_payload_request(self, action: RequestPayload) -> list[Event]:
        """Propose now if there is work; when idle, hold the request a while so an
        idle chain does not fill its ledger with empty blocks."""
        if self.mempool.ready_count or self._needs_progress():
            return [self._payload(action)]
        self._held = action
        self._release_due = False
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        delay_s = min(IDLE_PROPOSAL_MS, self._params.round_timeout_ms // 2) / 1000
        self._idle_timer = self.deps.schedule(delay_s, self._release_held)
        return []

    def _release_held(self) -> None:
        if self._held is not None:
            self._feed(self._take_held())

    def _release_held_soon(self) -> None:
        """Propose on the loop's next turn, not in the middle of admitting: requests
        admitted in the meantime join the same block, so a backlog makes big blocks
        (each block has costs of its own: consensus, hashing, a durable write)."""
        if self._held is None or self._release_due:
            return
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._release_due = True
        self._idle_timer = self.deps.schedule(0, self._release_held)

    def _take_held(self) -> Event:
        held, self._held = self._held, None
        self._release_due = False
        assert held is not None
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        return self._payload(held)

    def _needs_progress(self) -> bool:
        """Blocks must keep coming while transactions are uncommitted, or executed
        but not yet attested by a committed header (their proofs need one)."""
        core = self.core
        if core is not None and any(p.block.txs for p in core.tree.blocks.values()):
            return True
        tip_header = self.store.header(self.store.tip_height())
        return tip_header is not None and self._last_tx_height > tip_header.exec_height

    def _payload(self, action: RequestPayload) -> Event:
        params = self._params
        with self.cpu.measure("propose"):
            in_flight = self._branch_txs(action.parent_hash)
            taken = self.mempool.take(params.block_txs_max, params.block_size_bytes_max, in_flight)
        txs = tuple(raw for _, raw in taken)
        return PayloadReady(action.epoch, action.round, txs, self.deps.now_ms())

    def _fetch(self, action: FetchBlock) -> None:
        payload = encode(BlockRequest(action.block_hash))
        if action.peer < 0:
            self.deps.outbox.broadcast(Kind.BLOCK_REQUEST, payload)
        else:
            self.deps.outbox.send(action.peer, Kind.BLOCK_REQUEST, payload)

    def _on_block_request(self, sender: int, payload: bytes) -> None:
        try:
            req = decode(payload, BlockRequest)
        except CodecError:
            self.deps.metrics.inc("chaincity_bad_messages_total", chain=self.chain_id)
            return
        proposal = None if self.core is None else self.core.get_proposal(req.block_hash)
        if proposal is not None:
            self.deps.outbox.send(sender, Kind.BLOCK_RESPONSE, encode(proposal))

    # ------------------------------------------------------------ commit and execution

    def _commit(self, action: Commit, persist: _Persist | None = None) -> list[Event]:
        """Execute and store the committed blocks. ``persist``, consensus data that the
        step writes after the commit, goes into the first block's transaction instead:
        one durable write where there were two. It is written earlier than the step
        meant, never later, so it is still durable before every message the step
        sends after it."""
        events: list[Event] = []
        for proposal in action.proposals:
            block = proposal.block
            if block.header.height <= self.store.tip_height():
                continue
            result = self.apply_block(block, action.cert, persist)
            if result is None:
                return events
            persist = None
            events.append(ExecutionResultReady(result))
        return events

    def apply_block(
        self, block: Block, cert: QuorumCert | None, persist: _Persist | None = None
    ) -> ExecResult | None:
        """Execute a committed block and store it, with ``persist`` if given (marked
        written); None if this node must halt."""
        h = block.header
        if h.height != self.store.tip_height() + 1:
            raise RuntimeError(f"block {h.height} applied out of order")
        if not self._check_attestation(h.exec_height, h.state_root, h.receipts_root):
            return None
        view = self.store.overlay()
        with self.cpu.measure("execute"):
            outcome = self._executor.execute_block(view, h.height, h.timestamp_ms, block.txs)
        with self.cpu.measure("state_root"):
            root = self.store.state_root(view)
        result = ExecResult(h.height, root, outcome.receipts_root)
        with self.cpu.measure("ledger_write"):
            consensus = None if persist is None else (persist.safety, persist.blocks)
            self.store.commit_block(block, outcome.receipts, view, cert, result, consensus)
        if persist is not None:
            persist.written = True
        with self.cpu.measure("pool_upkeep"):
            self._after_commit(h.height, outcome)
        # What clients following the tip ask for next: its ids are known here already.
        self._remember_summary(block, tuple(None if t is None else t.hex() for t in outcome.tx_ids))
        self._announce_commit()
        return result

    def _after_commit(self, height: int, outcome: BlockResult) -> None:
        """The pool forgets what committed, expired or can never commit."""
        ids = outcome.committed_tx_ids
        self.mempool.remove_committed(ids)
        for tid in self.mempool.remove_expired(height):
            self._remember_skip(tid, "expired before it was committed")
        for tid, reason in outcome.skipped:
            if tid:
                self._remember_skip(tid, reason)
        # A skipped transaction can never become valid again: drop it too.
        self.mempool.remove_committed(tid for tid, _ in outcome.skipped if tid)
        if ids:
            self._last_tx_height = height
        self._observe_commit(height, ids)

    def _check_attestation(self, exec_height: int, state_root: bytes, receipts_root: bytes) -> bool:
        """A committed header attests a result; ours must match, or we stop serving."""
        ours = self.store.exec_result(exec_height)
        if ours is None or (ours.state_root, ours.receipts_root) == (state_root, receipts_root):
            return True
        self.halted = (
            f"execution diverged at height {exec_height}: the committed chain attests state "
            f"root {state_root.hex()} but this node computed {ours.state_root.hex()}"
        )
        log.error("%s: %s; stopping this chain", self.chain_id, self.halted)
        self.stop()
        return False

    def _branch_txs(self, parent_hash: bytes) -> set[bytes]:
        """What the uncommitted blocks a proposal extends already carry: it commits
        with them, so the proposal leaves it out. A transaction that only an abandoned
        branch carried is proposed again, with no bookkeeping to undo."""
        if self.core is None:
            return set()
        path, _ = self.core.tree.path_from_root(parent_hash)
        return {raw for _, proposal in path for raw in proposal.block.txs}

    # ------------------------------------------------------------ metrics

    def _register_metrics(self) -> None:
        m, c = self.deps.metrics, self.chain_id
        m.gauge("chaincity_height", lambda: self.store.tip_height(), "Committed height.", chain=c)
        m.gauge("chaincity_round", lambda: self.core.round if self.core else 0, "Round.", chain=c)
        m.gauge("chaincity_mempool_txs", lambda: len(self.mempool), "Pending txs.", chain=c)
        m.gauge("chaincity_mempool_bytes", lambda: self.mempool.size_bytes, chain=c)

    def _observe_commit(self, height: int, ids: list[bytes]) -> None:
        m = self.deps.metrics
        m.inc(
            "chaincity_blocks_committed_total", help_text="Blocks committed.", chain=self.chain_id
        )
        m.inc(
            "chaincity_txs_committed_total",
            len(ids),
            "Transactions committed.",
            chain=self.chain_id,
        )
        now = self.deps.now_ms()
        hist = m.histogram(
            "chaincity_tx_latency_seconds", "Submit-to-commit latency.", chain=self.chain_id
        )
        for tid in ids:
            t0 = self._submitted_ms.pop(tid, None)
            if t0 is not None:
                hist.observe((now - t0) / 1000)


def _describe(action: Action) -> str:
    if isinstance(action, SendTo | Broadcast):
        kind = type(action).__name__
        return f"{kind} {len(action.data)} bytes" + (
            f" to {action.to}" if isinstance(action, SendTo) else ""
        )
    if isinstance(action, Commit):
        heights = [p.block.header.height for p in action.proposals]
        return f"Commit heights {heights}"
    if isinstance(action, PersistBlock):
        h = action.proposal.block.header
        return f"PersistBlock height {h.height} round {h.round}"
    return repr(action)[:200]
