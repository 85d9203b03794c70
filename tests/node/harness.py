"""In-process validators over a simulated network and clock, with a memory store.

The memory store is a test double of the LMDB store: same interface, plain
dicts, a root that is the hash of the sorted items, and no real proofs.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaincity.crypto import CryptoSuite, get_suite
from chaincity.genesis.model import ChainParams, Genesis, OrgInfo
from chaincity.mempool import SignatureChecker, SignatureJob, verify_jobs
from chaincity.node.chain import ChainDeps, ChainRuntime
from chaincity.node.metrics import Metrics
from chaincity.node.wire import Kind
from chaincity.types.block import Block, BlockHeader, Receipt
from chaincity.types.consensus import ExecResult, Proposal, QuorumCert, SafetyData
from chaincity.types.validators import Validator, ValidatorSet
from tests.support import CA_KEY, SUITE

_MISSING = object()


class MemNamespace:
    def __init__(self, view: MemView, contract: str) -> None:
        self._view, self._prefix = view, contract.encode() + b"\x00"

    def get(self, key: bytes) -> bytes | None:
        return self._view.get(self._prefix + key)

    def put(self, key: bytes, value: bytes) -> None:
        self._view.set(self._prefix + key, value)

    def delete(self, key: bytes) -> None:
        self._view.set(self._prefix + key, None)


class MemView:
    def __init__(self, base: dict[bytes, bytes]) -> None:
        self.base = base
        self.changes: dict[bytes, bytes | None] = {}
        self.log: list[tuple[bytes, Any]] = []

    def get(self, key: bytes) -> bytes | None:
        if key in self.changes:
            return self.changes[key]
        return self.base.get(key)

    def set(self, key: bytes, value: bytes | None) -> None:
        self.log.append((key, self.changes.get(key, _MISSING)))
        self.changes[key] = value

    def namespace(self, contract: str) -> MemNamespace:
        return MemNamespace(self, contract)

    def checkpoint(self) -> Any:
        return len(self.log)

    def revert(self, checkpoint: Any) -> None:
        while len(self.log) > checkpoint:
            key, old = self.log.pop()
            if old is _MISSING:
                del self.changes[key]
            else:
                self.changes[key] = old

    def merged(self) -> dict[bytes, bytes]:
        out = dict(self.base)
        for k, v in self.changes.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = v
        return out


class MemoryStore:
    def __init__(self) -> None:
        self.blocks: dict[int, Block] = {}
        self.certs: dict[int, QuorumCert | None] = {}
        self.results: dict[int, ExecResult] = {}
        self.receipts: dict[bytes, Receipt] = {}
        self.state: dict[bytes, bytes] = {}
        self.safety: SafetyData | None = None
        self.safety_saves = 0
        self.consensus_writes = 0
        self.merged_writes = 0  # consensus data written with a committed block
        self.pending: dict[tuple[int, int], Proposal] = {}

    def tip_height(self) -> int:
        return max(self.blocks, default=-1)

    def block(self, height: int) -> Block | None:
        return self.blocks.get(height)

    def header(self, height: int) -> BlockHeader | None:
        b = self.blocks.get(height)
        return None if b is None else b.header

    def commit_cert(self, height: int) -> QuorumCert | None:
        return self.certs.get(height)

    def exec_result(self, height: int) -> ExecResult | None:
        return self.results.get(height)

    def load_safety(self) -> SafetyData | None:
        return self.safety

    def save_safety(self, safety: SafetyData) -> None:
        self.safety = safety
        self.safety_saves += 1

    def save_consensus(self, safety: SafetyData | None, blocks: list[Proposal]) -> None:
        self.consensus_writes += 1
        if safety is not None:
            self.save_safety(safety)
        for proposal in blocks:
            self.save_block(proposal)

    def save_block(self, proposal: Proposal) -> None:
        self.pending[proposal.block.header.height, proposal.block.header.round] = proposal

    def pending_blocks(self) -> list[Proposal]:
        tip = self.tip_height()
        return [p for p in self.pending.values() if p.block.header.height > tip]

    def receipt(self, tx_id: bytes) -> Receipt | None:
        return self.receipts.get(tx_id)

    def is_committed(self, tx_id: bytes) -> bool:
        return tx_id in self.receipts

    def committed_among(self, tx_ids: Collection[bytes]) -> set[bytes]:
        return {t for t in tx_ids if t in self.receipts}

    def overlay(self) -> MemView:
        return MemView(self.state)

    def state_root(self, view: Any) -> bytes:
        h = hashlib.sha256()
        for k, v in sorted(view.merged().items()):
            h.update(len(k).to_bytes(4, "big") + k + len(v).to_bytes(4, "big") + v)
        return h.digest()

    def commit_block(
        self,
        block: Block,
        receipts: list[Receipt],
        view: Any,
        cert: QuorumCert | None,
        result: ExecResult,
        consensus: tuple[SafetyData | None, list[Proposal]] | None = None,
    ) -> None:
        assert block.header.height == self.tip_height() + 1
        self.state = view.merged()
        self.blocks[block.header.height] = block
        self.certs[block.header.height] = cert
        self.results[block.header.height] = result
        for r in receipts:
            self.receipts[r.tx_id] = r
        if consensus is not None:
            self.merged_writes += 1
            if consensus[0] is not None:
                self.save_safety(consensus[0])
            for proposal in consensus[1]:
                self.save_block(proposal)

    def get_state(self, contract: str, key: bytes, height: int | None = None) -> bytes | None:
        return self.state.get(contract.encode() + b"\x00" + key)

    def prove_state(self, contract: str, key: bytes, height: int) -> bytes:
        return b""


@dataclass(order=True)
class _Timer:
    at_ms: int
    seq: int
    fn: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class SimNet:
    """Delivers messages after a fixed delay, in order, on a virtual clock."""

    def __init__(self, n: int, delay_ms: int = 5) -> None:
        self.now_ms = 1_700_000_000_000
        self.delay_ms = delay_ms
        self.delay_ms_by_kind: dict[Kind, int] = {}  # e.g. gossip slower than consensus
        self._heap: list[_Timer] = []
        self._seq = itertools.count()
        self.down: set[int] = set()
        self.nodes: list[ChainRuntime] = []
        self.n = n

    def schedule(self, delay_s: float, fn: Callable[[], None]) -> _Timer:
        t = _Timer(self.now_ms + int(delay_s * 1000), next(self._seq), fn)
        heapq.heappush(self._heap, t)
        return t

    def deliver(self, src: int, dst: int, kind: Kind, payload: bytes) -> None:
        def run() -> None:
            if src not in self.down and dst not in self.down:
                self.nodes[dst].on_message(src, kind, payload)

        self.schedule(self.delay_ms_by_kind.get(kind, self.delay_ms) / 1000, run)

    def run_until(self, cond: Callable[[], bool], limit_ms: int = 60_000) -> bool:
        end = self.now_ms + limit_ms
        while self._heap and self.now_ms <= end:
            if cond():
                return True
            t = heapq.heappop(self._heap)
            self.now_ms = max(self.now_ms, t.at_ms)
            if not t.cancelled:
                t.fn()
        return cond()


class SimOutbox:
    def __init__(self, net: SimNet, me: int) -> None:
        self.net, self.me = net, me

    def send(self, index: int, kind: Kind, payload: bytes) -> None:
        # Like the node's transport, there is no link to oneself.
        if index != self.me:
            self.net.deliver(self.me, index, kind, payload)

    def broadcast(self, kind: Kind, payload: bytes) -> None:
        for j in range(self.net.n):
            if j != self.me:
                self.net.deliver(self.me, j, kind, payload)


class DeferredChecker:
    """Checks signatures for real but reports ``delay_ms`` later on the simulated
    clock: worker threads that finish after the chain has moved on."""

    def __init__(self, net: SimNet, delay_ms: int) -> None:
        self.net, self.delay_ms = net, delay_ms
        self.batches = 0

    def start(
        self, suite: CryptoSuite, jobs: Sequence[SignatureJob], done: Callable[[list[bool]], None]
    ) -> bool:
        results = verify_jobs(suite, jobs)
        self.batches += 1
        self.net.schedule(self.delay_ms / 1000, lambda: done(results))
        return True


def validator_key(i: int) -> bytes:
    return bytes([100 + i]) * 32


def make_genesis(n: int, **params: int) -> Genesis:
    vset = ValidatorSet(
        0,
        tuple(Validator(f"v{i}", "bank", SUITE.public_key(validator_key(i))) for i in range(n)),
    )
    org = OrgInfo("bank", SUITE.public_key(CA_KEY), "")
    return Genesis("main", SUITE.name, 1_600_000_000_000, (org,), vset, ChainParams(**params))


def make_network(
    n: int, checker: Callable[[SimNet], SignatureChecker] | None = None, **params: int
) -> tuple[SimNet, list[MemoryStore]]:
    net = SimNet(n)
    genesis = make_genesis(n, **params)
    stores = [MemoryStore() for _ in range(n)]
    for i in range(n):
        deps = ChainDeps(
            genesis=genesis,
            suite=get_suite("ed25519-sha256"),
            private_key=validator_key(i),
            store=stores[i],
            outbox=SimOutbox(net, i),
            schedule=net.schedule,
            now_ms=lambda: net.now_ms,
            metrics=Metrics(),
            signatures=None if checker is None else checker(net),
        )
        net.nodes.append(ChainRuntime("main", deps))
    return net, stores


def restart(net: SimNet, stores: list[MemoryStore], i: int) -> None:
    """A fresh runtime on the same store, as after kill -9 and restart."""
    old = net.nodes[i]
    old.stop()
    net.nodes[i] = ChainRuntime("main", old.deps)
    net.down.discard(i)
    net.nodes[i].start()
