"""The mempool admits a transaction once, and never drops one it accepted.

Admission (``admit``) checks, cheapest first: size, decoding, chain, expiry
window, duplicates (in the pool, or committed: the ledger's transaction index),
limits, the signature, and the sender's member certificate. A transaction that
passes is *accepted*: it stays in the pool until a block holding it commits or
its expiry height passes (after which it can no longer commit anywhere, so
dropping it loses nothing). When the pool is full, new transactions are refused
with ``Reject.FULL`` (HTTP 503 + Retry-After at the API); accepted ones are
never evicted to make room.

Replay protection: a transaction's id is the hash of its signed body, and the
executor skips any id already committed. Ids only need remembering for as long
as a transaction can live: its ``expiry_height`` must lie within
``expiry_window`` heights of the chain's tip at admission and at execution.

Admission comes in two halves so that the signatures, the costly part, can be
checked elsewhere (worker threads) while the event loop goes on: ``precheck``
does everything before the signature and lists the signature checks still
needed; ``admit_checked`` takes their results, checks again what may have
changed in between (the chain moved on, another batch admitted the same
transaction, the pool filled up), then the signature and the sender, and
accepts. ``admit_many`` is the two halves with the signatures checked inline.

A pooled transaction stays where it is until it commits or expires: ``take``
reads the oldest ones and leaves them in place, skipping those the caller says
are already in flight (the node passes the transactions of the uncommitted
blocks its proposal extends). So a proposal that never commits needs no undo:
its transactions are simply not in flight any more.
"""

from __future__ import annotations

import enum
import heapq
from collections import OrderedDict
from collections.abc import Callable, Collection, Container, Iterable, Sequence
from dataclasses import dataclass

import msgspec

from chaincity.codec import CodecError, Tag, decode, encode, tagged
from chaincity.crypto import CryptoSuite
from chaincity.mempool.verify import SignatureJob, verify_jobs
from chaincity.types.identity import MemberCert
from chaincity.types.primitives import TX_SIZE_MAX
from chaincity.types.tx import Transaction


class Reject(enum.Enum):
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    WRONG_CHAIN = "wrong_chain"
    EXPIRED = "expired"
    EXPIRY_TOO_FAR = "expiry_too_far"
    DUPLICATE = "duplicate"
    COMMITTED = "committed"
    BAD_SIGNATURE = "bad_signature"
    UNAUTHORIZED = "unauthorized"
    SENDER_LIMIT = "sender_limit"
    FULL = "full"


class AdmitError(Exception):
    """Why a transaction was not accepted; ``reject`` says whose fault it is."""

    def __init__(self, reject: Reject, reason: str, tx_id: bytes = b"") -> None:
        super().__init__(reason)
        self.reject = reject
        self.reason = reason
        self.tx_id = tx_id

    @property
    def retryable(self) -> bool:
        """The pool is busy, not the transaction bad: try again later."""
        return self.reject in (Reject.FULL, Reject.SENDER_LIMIT)


@dataclass(frozen=True, slots=True)
class MempoolParams:
    count_max: int = 100_000
    bytes_max: int = 256 * 1024 * 1024
    per_sender_max: int = 10_000
    expiry_window: int = 1_000
    gossip_queue_max: int = 100_000


class _Entry(msgspec.Struct, gc=False):
    """Holds only bytes, an int and a gc=False struct: no cycle is possible, so the
    100,000 entries of a full pool are not walked by the cycle collector."""

    raw: bytes
    sender: bytes
    expiry_height: int
    # Kept so the executor need not decode and hash the transaction again.
    tx: Transaction


@dataclass(frozen=True, slots=True)
class Candidate:
    """A transaction that passed ``precheck``; its signature is ``jobs[job]``, or, with
    ``job`` = OVERFLOW, ``deferred``: checked only if it still finds room."""

    raw: bytes
    tid: bytes
    tx: Transaction
    job: int
    deferred: SignatureJob | None = None


# The batch's earlier candidates already take the pool's room (or the sender's): its
# signature is checked at admission only if some of them were refused after all, which
# keeps the outcome that of admitting one by one without checking, under overload,
# signatures that would be refused as full anyway.
OVERFLOW = -1


@dataclass(frozen=True, slots=True)
class Candidates:
    """What ``precheck`` made of a batch: per transaction, in order, a candidate or
    the refusal; and the distinct signature checks the candidates need."""

    height: int
    items: list[Candidate | AdmitError]
    jobs: list[SignatureJob]


EXPIRIES_SLACK = 1_024


class _Room:
    """What is left of the pool's limits while a batch is prechecked, as if each
    candidate so far were admitted."""

    __slots__ = ("bytes_left", "count_left", "per_sender", "per_sender_max", "pool")

    def __init__(self, pool: Mempool) -> None:
        params = pool._params
        self.pool = pool
        self.count_left = params.count_max - len(pool)
        self.bytes_left = params.bytes_max - pool._bytes
        self.per_sender: dict[bytes, int] = {}
        self.per_sender_max = params.per_sender_max

    def take(self, size: int, sender: bytes) -> bool:
        pending = self.per_sender.get(sender)
        if pending is None:
            pending = self.pool._per_sender.get(sender, 0)
        if self.count_left <= 0 or size > self.bytes_left or pending >= self.per_sender_max:
            return False
        self.count_left -= 1
        self.bytes_left -= size
        self.per_sender[sender] = pending + 1
        return True


CommittedAmong = Callable[[Collection[bytes]], Container[bytes]]


class Mempool:
    """Admission, ordering and bookkeeping for one chain's pending transactions."""

    def __init__(
        self,
        *,
        suite: CryptoSuite,
        chain_id: str,
        authorize: Callable[[MemberCert, int], object],
        is_committed: Callable[[bytes], bool],
        params: MempoolParams | None = None,
        committed_among: CommittedAmong | None = None,
    ) -> None:
        self._suite = suite
        self._chain_id = chain_id
        self._authorize = authorize
        # One ledger lookup for a whole batch when the ledger offers it.
        self._committed_among: CommittedAmong = committed_among or (
            lambda tids: {t for t in tids if is_committed(t)}
        )
        self._params = params or MempoolParams()
        self._ready: OrderedDict[bytes, _Entry] = OrderedDict()  # oldest first
        # (expiry height, id) of pooled transactions, and of some that left since:
        # expiry is found without a scan of the whole pool per block.
        self._expiries: list[tuple[int, bytes]] = []
        self._id_of_raw: dict[bytes, bytes] = {}  # a pooled transaction's bytes -> its id
        self._per_sender: dict[bytes, int] = {}
        self._bytes = 0
        self._gossip: list[bytes] = []
        self.stats: dict[str, int] = {r.value: 0 for r in Reject} | {"accepted": 0}

    def __len__(self) -> int:
        return len(self._ready)

    @property
    def ready_count(self) -> int:
        """Pooled transactions (some may be in blocks not yet committed)."""
        return len(self._ready)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __contains__(self, tid: bytes) -> bool:
        return tid in self._ready

    def is_verified(self, tid: bytes) -> bool:
        """Whether this node already checked the signature of ``tid`` (it is pooled)."""
        return tid in self

    def pooled(self, raw: bytes) -> tuple[bytes, Transaction] | None:
        """The id and decoded form of ``raw`` if it is pooled (so already checked)."""
        tid = self._id_of_raw.get(raw)
        if tid is None:
            return None
        entry = self._ready.get(tid)
        return None if entry is None else (tid, entry.tx)

    def admit(self, raw: bytes, height: int, now_ms: int, *, gossip: bool = True) -> bytes:
        """Accept ``raw`` or raise AdmitError; returns the transaction id.

        ``height`` is the chain's latest committed height, ``now_ms`` the time the
        sender's certificate is checked at. Accepted local transactions are
        queued for gossip unless ``gossip`` is False (they came from a peer).
        """
        outcome = self.admit_many([raw], height, now_ms, gossip=gossip)[0]
        if isinstance(outcome, AdmitError):
            raise outcome
        return outcome

    def admit_many(
        self, raws: Sequence[bytes], height: int, now_ms: int, *, gossip: bool = True
    ) -> list[bytes | AdmitError]:
        """``admit`` for each of ``raws``, in order: an id or the AdmitError, per
        transaction. The committed check costs one ledger lookup for the batch."""
        candidates = self.precheck(raws, height)
        signature_ok = verify_jobs(self._suite, candidates.jobs)
        return self.admit_checked(candidates, signature_ok, height, now_ms, gossip=gossip)

    def precheck(self, raws: Sequence[bytes], height: int) -> Candidates:
        """The checks before the signature, for a batch at committed ``height``:
        size, decoding, chain, expiry window, then duplicates, committed (one ledger
        lookup) and limits against the pool as it is now. Changes nothing."""
        decoded: list[tuple[bytes, Transaction, bytes] | AdmitError] = []
        for raw in raws:
            try:
                decoded.append(self._check_decoded(raw, height))
            except AdmitError as exc:
                decoded.append(exc)
        fresh = [d[0] for d in decoded if not isinstance(d, AdmitError)]
        committed = self._committed_among(fresh) if fresh else frozenset()
        items: list[Candidate | AdmitError] = []
        jobs: list[SignatureJob] = []
        job_of_raw: dict[bytes, int] = {}  # an identical copy shares the check
        room = _Room(self)
        for raw, d in zip(raws, decoded, strict=True):
            try:
                if isinstance(d, AdmitError):
                    raise d
                tid, tx, body_raw = d
                self._check_admissible(raw, tid, tx, tid in committed)
            except AdmitError as exc:
                items.append(exc)
                continue
            # = verify_tx_signature(suite, tx), without encoding the body again.
            sender = tx.body.sender.body.public_key
            signature_job = (sender, tagged(Tag.TX, body_raw), tx.signature)
            job = job_of_raw.get(raw)
            if job is None and not room.take(len(raw), sender):
                items.append(Candidate(raw, tid, tx, OVERFLOW, signature_job))
                continue
            if job is None:
                job = job_of_raw[raw] = len(jobs)
                jobs.append(signature_job)
            items.append(Candidate(raw, tid, tx, job))
        return Candidates(height, items, jobs)

    def admit_checked(
        self,
        candidates: Candidates,
        signature_ok: Sequence[bool],
        height: int,
        now_ms: int,
        *,
        gossip: bool = True,
    ) -> list[bytes | AdmitError]:
        """Finish the admission ``precheck`` began, given ``signature_ok[i]`` for
        ``candidates.jobs[i]``, at committed ``height`` (which may have moved on
        since): per transaction, its id or the AdmitError, in order."""
        if len(signature_ok) != len(candidates.jobs):
            raise ValueError("one signature result is needed per signature job")
        committed = self._committed_since(candidates, height)
        out: list[bytes | AdmitError] = []
        for item in candidates.items:
            try:
                if isinstance(item, AdmitError):
                    raise item
                if height != candidates.height:
                    self._check_not_expired(item.tid, item.tx, height)
                ok = signature_ok[item.job] if item.job != OVERFLOW else None
                entry = self._check_rest(item, ok, item.tid in committed, now_ms)
                out.append(self._accept(item.raw, item.tid, entry, gossip))
            except AdmitError as exc:
                self.stats[exc.reject.value] += 1
                out.append(exc)
        return out

    def _committed_since(self, candidates: Candidates, height: int) -> Container[bytes]:
        """Candidates that committed after ``precheck``: none unless the chain moved."""
        if height == candidates.height:
            return frozenset()
        tids = [c.tid for c in candidates.items if isinstance(c, Candidate)]
        return self._committed_among(tids) if tids else frozenset()

    def _accept(self, raw: bytes, tid: bytes, entry: _Entry, gossip: bool) -> bytes:
        self._ready[tid] = entry
        heapq.heappush(self._expiries, (entry.expiry_height, tid))
        self._id_of_raw[raw] = tid
        self._per_sender[entry.sender] = self._per_sender.get(entry.sender, 0) + 1
        self._bytes += len(raw)
        self.stats["accepted"] += 1
        if gossip and len(self._gossip) < self._params.gossip_queue_max:
            self._gossip.append(raw)
        return tid

    def _check_decoded(self, raw: bytes, height: int) -> tuple[bytes, Transaction, bytes]:
        """The checks that need no ledger: size, decoding, chain, expiry window."""
        p = self._params
        if len(raw) > TX_SIZE_MAX:
            raise AdmitError(Reject.TOO_LARGE, f"transaction larger than {TX_SIZE_MAX} bytes")
        try:
            tx = decode(raw, Transaction, size_max=TX_SIZE_MAX)
        except CodecError as exc:
            raise AdmitError(Reject.MALFORMED, f"malformed transaction: {exc}") from None
        body = tx.body
        body_raw = _body_bytes(raw, tx)
        tid = self._suite.tagged_hash(Tag.TX, body_raw)  # = tx_id(suite, body)
        if body.chain_id != self._chain_id:
            raise AdmitError(Reject.WRONG_CHAIN, f"transaction is for chain {body.chain_id!r}", tid)
        self._check_not_expired(tid, tx, height)
        if body.expiry_height > height + p.expiry_window:
            raise AdmitError(
                Reject.EXPIRY_TOO_FAR,
                f"expiry height must be at most {height + p.expiry_window}",
                tid,
            )
        return tid, tx, body_raw

    @staticmethod
    def _check_not_expired(tid: bytes, tx: Transaction, height: int) -> None:
        if tx.body.expiry_height <= height:
            raise AdmitError(Reject.EXPIRED, f"expired at height {tx.body.expiry_height}", tid)

    def _check_admissible(self, raw: bytes, tid: bytes, tx: Transaction, committed: bool) -> None:
        """Duplicates and limits, against the pool as it is now."""
        p = self._params
        # Checked here, not with decoding: an earlier copy in the same batch counts.
        if tid in self:
            raise AdmitError(Reject.DUPLICATE, "transaction already pending", tid)
        if committed:
            raise AdmitError(Reject.COMMITTED, "transaction already committed", tid)
        if len(self) >= p.count_max or self._bytes + len(raw) > p.bytes_max:
            raise AdmitError(Reject.FULL, "mempool is full; retry later", tid)
        sender = tx.body.sender.body.public_key
        if self._per_sender.get(sender, 0) >= p.per_sender_max:
            raise AdmitError(Reject.SENDER_LIMIT, "too many pending transactions from sender", tid)

    def _check_rest(
        self, item: Candidate, signature_ok: bool | None, committed: bool, now_ms: int
    ) -> _Entry:
        """Duplicates and limits again (the pool may have changed since ``precheck``),
        then the signature (checked here if it was deferred) and the sender."""
        tid, tx = item.tid, item.tx
        self._check_admissible(item.raw, tid, tx, committed)
        if signature_ok is None:
            assert item.deferred is not None, "a candidate without a signature job"
            (signature_ok,) = verify_jobs(self._suite, [item.deferred])
        if not signature_ok:
            raise AdmitError(Reject.BAD_SIGNATURE, "signature does not verify", tid)
        try:
            self._authorize(tx.body.sender, now_ms)
        except Exception as exc:  # the authorizer's own reason
            raise AdmitError(Reject.UNAUTHORIZED, f"sender not authorized: {exc}", tid) from None
        return _Entry(item.raw, tx.body.sender.body.public_key, tx.body.expiry_height, tx)

    def take(
        self, count_max: int, bytes_max: int, skip: Container[bytes] = ()
    ) -> list[tuple[bytes, bytes]]:
        """Up to ``count_max`` pooled transactions (oldest first, within ``bytes_max``)
        whose bytes are not in ``skip``, as (id, bytes). They stay pooled."""
        taken: list[tuple[bytes, bytes]] = []
        size = 0
        for tid, entry in self._ready.items():
            if len(taken) >= count_max:
                break
            raw = entry.raw
            if raw in skip:
                continue
            if size + len(raw) > bytes_max:
                break
            taken.append((tid, raw))
            size += len(raw)
        return taken

    def remove_committed(self, tids: Iterable[bytes]) -> None:
        for tid in tids:
            entry = self._ready.pop(tid, None)
            if entry is not None:
                self._forget(entry)

    def remove_expired(self, height: int) -> list[bytes]:
        """Drop transactions that can no longer commit after ``height``; their ids."""
        expiries, ready = self._expiries, self._ready
        expired: list[bytes] = []
        while expiries and expiries[0][0] <= height:
            _, tid = heapq.heappop(expiries)
            entry = ready.get(tid)
            if entry is not None and entry.expiry_height <= height:
                expired.append(tid)
        self.remove_committed(expired)
        if len(expiries) > 2 * len(ready) + EXPIRIES_SLACK:
            # Entries of transactions that committed: drop them all at once.
            self._expiries = [(e.expiry_height, tid) for tid, e in ready.items()]
            heapq.heapify(self._expiries)
        return expired

    def drain_gossip(self, count_max: int) -> list[bytes]:
        """Up to ``count_max`` locally admitted transactions not yet gossiped."""
        batch, self._gossip = self._gossip[:count_max], self._gossip[count_max:]
        return batch

    def _forget(self, entry: _Entry) -> None:
        self._bytes -= len(entry.raw)
        self._id_of_raw.pop(entry.raw, None)
        left = self._per_sender[entry.sender] - 1
        if left:
            self._per_sender[entry.sender] = left
        else:
            del self._per_sender[entry.sender]


def _body_bytes(raw: bytes, tx: Transaction) -> bytes:
    """The canonical bytes of ``tx.body``, cut out of ``raw`` (which ``decode``
    checked is canonical): a two-element array header, the body, then the
    signature as bin 8 (marker, length, bytes; signatures are under 256 bytes)."""
    sig_size = len(tx.signature) + 2
    if raw[:1] == b"\x92" and len(tx.signature) < 256 and len(raw) > sig_size + 1:
        return raw[1 : len(raw) - sig_size]
    return encode(tx.body)
