"""Admission of transactions into one chain's mempool: from the API and from gossip.

``Admission`` is mixed into ``ChainRuntime``. Both paths pre-check a batch
(decoding, duplicates, expiry, authorization), check the signatures of what is
left (in the signature checker's worker processes when it takes them, inline
otherwise), then admit what passed. Locally submitted transactions are gossiped
to the other validators in batches.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from chaincity.api.server import SubmitOutcome
from chaincity.codec import CodecError, decode, encode
from chaincity.consensus.events import RequestPayload
from chaincity.crypto import CryptoSuite
from chaincity.mempool import AdmitError, Candidates, Mempool, verify_jobs
from chaincity.node.metrics import CpuPhases
from chaincity.node.store import ChainStore
from chaincity.node.wire import Kind, TxBatch
from chaincity.types.tx import Transaction, verify_tx_signature

if TYPE_CHECKING:
    from chaincity.node.chain import ChainDeps

GOSSIP_BATCH_MAX = 1_000
# Batches to admit (from the API and from gossip) wait in a queue that the event
# loop serves one batch per turn, so that what else is ready (consensus messages,
# queries) is not held behind every batch that arrived meanwhile. Past this many
# bytes waiting, a batch is admitted at once, which holds the loop (and so the
# reading of more batches): the back-pressure, as before.
ADMISSION_QUEUE_BYTES_MAX = 16 * 1024 * 1024
SKIPPED_REMEMBERED_MAX = 10_000
LATENCY_TRACKED_MAX = 200_000


class Admission:
    """How transactions enter the mempool (the runtime provides the attributes below)."""

    chain_id: str
    deps: ChainDeps
    suite: CryptoSuite
    store: ChainStore
    mempool: Mempool
    halted: str | None
    _stopped: bool
    _held: RequestPayload | None  # a proposal waiting for transactions
    _release_held_soon: Callable[[], None]
    _skipped: OrderedDict[bytes, str]  # transaction id -> why it was not committed
    _submitted_ms: dict[bytes, int]  # transaction id -> when it was submitted here
    _admission_queue: deque[tuple[int, Callable[[], None]]]  # (bytes, admit it)
    _admission_queued_bytes: int
    _admission_scheduled: bool
    cpu: CpuPhases

    def _remember_skip(self, tid: bytes, reason: str) -> None:
        self._skipped[tid] = reason
        if len(self._skipped) > SKIPPED_REMEMBERED_MAX:
            self._skipped.popitem(last=False)

    def _is_committed(self, tid: bytes) -> bool:
        # The mempool drops a transaction when it commits, so a pooled one is not
        # committed: no ledger lookup for the common case.
        return tid not in self.mempool and self.store.is_committed(tid)

    def _verify_once(self, tid: bytes, tx: Transaction) -> bool:
        if self.mempool.is_verified(tid):
            return True
        return verify_tx_signature(self.suite, tx)

    # ------------------------------------------------------------ the queue

    def _defer_admission(self, size: int, admit: Callable[[], None]) -> None:
        """Run ``admit`` on a later turn of the loop, in arrival order, or now if
        too much already waits."""
        if self._admission_queued_bytes + size > ADMISSION_QUEUE_BYTES_MAX:
            admit()
            return
        self._admission_queue.append((size, admit))
        self._admission_queued_bytes += size
        if not self._admission_scheduled:
            self._admission_scheduled = True
            self.deps.schedule(0, self._admit_next)

    def _admit_next(self) -> None:
        self._admission_scheduled = False
        if not self._admission_queue:
            return
        size, admit = self._admission_queue.popleft()
        self._admission_queued_bytes -= size
        if self._admission_queue:
            self._admission_scheduled = True
            self.deps.schedule(0, self._admit_next)
        admit()

    # ------------------------------------------------------------ gossip

    def _on_gossip(self, payload: bytes) -> None:
        self._defer_admission(len(payload), lambda: self._admit_gossip_frame(payload))

    def _admit_gossip_frame(self, payload: bytes) -> None:
        if self._stopped or self.halted:
            return
        with self.cpu.measure("admission"):
            try:
                batch = decode(payload, TxBatch)
            except CodecError:
                self.deps.metrics.inc("chaincity_bad_messages_total", chain=self.chain_id)
                return
            # Duplicates are the common case (no signature to check); every refusal is
            # counted in mempool stats.
            candidates = self.mempool.precheck(batch.txs, self.store.tip_height())
        self._check_signatures(candidates, lambda ok: self._admit_gossip(candidates, ok))

    def _admit_gossip(self, candidates: Candidates, signature_ok: list[bool]) -> None:
        if self._stopped or self.halted:
            return
        now = self.deps.now_ms()
        with self.cpu.measure("admission"):
            self.mempool.admit_checked(
                candidates, signature_ok, self.store.tip_height(), now, gossip=False
            )
        if self._held is not None and self.mempool.ready_count:
            self._release_held_soon()

    def _check_signatures(self, candidates: Candidates, then: Callable[[list[bool]], None]) -> None:
        """``then(results)`` now, after checking inline, or later from the checker,
        which refuses when busy: checking inline then is the back-pressure."""
        jobs, checker = candidates.jobs, self.deps.signatures
        if jobs and checker is not None and checker.start(self.suite, jobs, then):
            self._count_checks("workers", len(jobs))
            return
        self._count_checks("inline", len(jobs))
        with self.cpu.measure("signatures"):
            results = verify_jobs(self.suite, jobs)
        then(results)

    def _count_checks(self, where: str, count: int) -> None:
        if count:
            self.deps.metrics.inc(
                "chaincity_signature_checks_total",
                count,
                "Transaction signatures checked at admission, by where.",
                chain=self.chain_id,
                where=where,
            )

    def flush_gossip(self) -> None:
        """Send locally admitted transactions to the other validators, in batches."""
        while True:
            batch = self.mempool.drain_gossip(GOSSIP_BATCH_MAX)
            if not batch:
                return
            self.deps.outbox.broadcast(Kind.TXS, encode(TxBatch(tuple(batch))))

    # ------------------------------------------------------------ API (ChainService)

    async def submit(self, raws: list[bytes]) -> list[SubmitOutcome]:
        """Admit local transactions when their turn in the queue comes; their
        signatures are checked by the signature checker while the event loop serves
        others."""
        submitted_ms = self.deps.now_ms()
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def start() -> None:
            if not turn.done():  # (cancelled if the client went away)
                turn.set_result(None)

        self._defer_admission(sum(len(raw) for raw in raws), start)
        await turn
        with self.cpu.measure("admission"):
            candidates = self.mempool.precheck(raws, self.store.tip_height())
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()

        def done(signature_ok: list[bool]) -> None:
            if not future.done():
                future.set_result(signature_ok)

        self._check_signatures(candidates, done)
        signature_ok = await future
        return self._admit_submitted(candidates, signature_ok, submitted_ms)

    def submit_now(self, raws: list[bytes]) -> list[SubmitOutcome]:
        """``submit`` with the signatures checked inline, on this thread."""
        submitted_ms = self.deps.now_ms()
        with self.cpu.measure("admission"):
            candidates = self.mempool.precheck(raws, self.store.tip_height())
        with self.cpu.measure("signatures"):
            signature_ok = verify_jobs(self.suite, candidates.jobs)
        self._count_checks("inline", len(candidates.jobs))
        return self._admit_submitted(candidates, signature_ok, submitted_ms)

    def _admit_submitted(
        self, candidates: Candidates, signature_ok: list[bool], submitted_ms: int
    ) -> list[SubmitOutcome]:
        now = self.deps.now_ms()
        height = self.store.tip_height()
        out = []
        with self.cpu.measure("admission"):
            for tid in self.mempool.admit_checked(candidates, signature_ok, height, now):
                if isinstance(tid, AdmitError):
                    out.append(SubmitOutcome(tid.tx_id, tid))
                    continue
                if len(self._submitted_ms) < LATENCY_TRACKED_MAX:
                    self._submitted_ms[tid] = submitted_ms
                out.append(SubmitOutcome(tid))
            self.flush_gossip()
        if self._held is not None and self.mempool.ready_count:
            self._release_held_soon()
        return out
