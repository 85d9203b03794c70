"""Signature checks for admission, inline or in worker threads.

Verifying a transaction's signature is most of the cost of admitting it, and
the crypto libraries (libsodium through PyNaCl's cffi bindings, Tongsuo through
tongsuopy's) release the GIL while they compute, so a few threads check a
batch's signatures on the other cores while the event loop goes on. Only
admission uses them: consensus and execution never see a thread.

A batch is cut into chunks so that several threads share a big one, and at
most ``batches_max`` batches are checked at once: beyond that ``start`` says no
and the caller checks inline, which slows the caller (its event loop stops
reading the sockets) instead of queueing without bound. A batch of fewer than
``jobs_min`` signatures is checked inline too: handing it to a thread and back
costs about as much as checking it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from chaincity.crypto import CryptoSuite

log = logging.getLogger("chaincity.mempool")

# (public key, signed message, signature)
SignatureJob = tuple[bytes, bytes, bytes]
Done = Callable[[list[bool]], None]
# Runs a callback on the thread that owns the mempool (the event loop's).
Post = Callable[[Callable[[], None]], object]

CHUNK_JOBS = 128
BATCHES_MAX = 8
JOBS_MIN = 8
THREADS_MAX = 256


def verify_jobs(suite: CryptoSuite, jobs: Sequence[SignatureJob]) -> list[bool]:
    """Check each job on this thread; a suite that raises counts as a refusal."""
    out: list[bool] = []
    for key, message, signature in jobs:
        try:
            out.append(suite.verify(key, message, signature))
        except Exception:  # a suite bug must never admit a transaction
            log.exception("signature check raised; counted as a bad signature")
            out.append(False)
    return out


class SignatureChecker(Protocol):
    """Checks signatures somewhere else and reports back on the owner's thread."""

    def start(self, suite: CryptoSuite, jobs: Sequence[SignatureJob], done: Done) -> bool:
        """Begin checking ``jobs``; ``done`` gets one result per job, later, on the
        owner's thread. False if nothing was started: check inline instead."""
        ...


class _Batch:
    """Results of one batch, filled in by worker threads chunk by chunk."""

    __slots__ = ("done", "left", "lock", "results")

    def __init__(self, size: int, chunks: int, done: Done) -> None:
        self.results = [False] * size
        self.left = chunks
        self.lock = threading.Lock()
        self.done = done


class ThreadedChecker:
    """A bounded pool of threads that check signatures; ``post`` hands results back
    to the event loop (``loop.call_soon_threadsafe``). Use from that loop only."""

    def __init__(
        self,
        threads: int,
        post: Post,
        *,
        chunk_jobs: int = CHUNK_JOBS,
        batches_max: int = BATCHES_MAX,
        jobs_min: int = JOBS_MIN,
    ) -> None:
        if not 1 <= threads <= THREADS_MAX:
            raise ValueError(f"threads must be from 1 to {THREADS_MAX}")
        if chunk_jobs < 1 or batches_max < 1:
            raise ValueError("chunk_jobs and batches_max must be positive")
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="chaincity-verify")
        self._post = post
        self._chunk_jobs = chunk_jobs
        self._batches_max = batches_max
        self._jobs_min = max(1, jobs_min)
        self._in_flight = 0  # touched on the loop's thread only
        self._closed = False
        self.threads = threads

    @property
    def in_flight(self) -> int:
        """Batches started whose results have not been handed back yet."""
        return self._in_flight

    def start(self, suite: CryptoSuite, jobs: Sequence[SignatureJob], done: Done) -> bool:
        if self._closed or len(jobs) < self._jobs_min or self._in_flight >= self._batches_max:
            return False
        size = self._chunk_jobs
        offsets = range(0, len(jobs), size)
        batch = _Batch(len(jobs), len(offsets), done)
        self._in_flight += 1
        for offset in offsets:
            self._pool.submit(self._run_chunk, batch, suite, jobs[offset : offset + size], offset)
        return True

    def close(self) -> None:
        """Stop taking work and wait for the chunks already running (a few ms);
        batches not finished by then never report back."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run_chunk(
        self, batch: _Batch, suite: CryptoSuite, jobs: Sequence[SignatureJob], offset: int
    ) -> None:
        results = verify_jobs(suite, jobs)
        with batch.lock:
            batch.results[offset : offset + len(results)] = results
            batch.left -= 1
            last = batch.left == 0
        if last:
            # RuntimeError: the loop closed first, so nobody waits any more.
            with contextlib.suppress(RuntimeError):
                self._post(lambda: self._finish(batch))

    def _finish(self, batch: _Batch) -> None:
        self._in_flight -= 1
        if not self._closed:
            batch.done(batch.results)
