"""Signature checks for admission: inline, in worker threads or in worker processes.

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

A thread must win Python's lock back after every signature, which a busy event
loop hands over only once per switch interval; worker *processes* have no such
wait. They pay for copying the jobs there and back instead (about 200 bytes a
signature), which is little beside checking it, so on a machine with cores to
spare they take the whole signature cost off the event loop.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Protocol

from chaincity.crypto import CryptoError, CryptoSuite, get_suite

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
PROCESSES_MAX = 64


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


_worker_suites: dict[str, CryptoSuite] = {}


def _verify_in_worker(suite_name: str, jobs: Sequence[SignatureJob]) -> list[bool]:
    """Runs in a worker process: the suite travels by name, built once per process."""
    suite = _worker_suites.get(suite_name)
    if suite is None:
        suite = _worker_suites[suite_name] = get_suite(suite_name)
    return verify_jobs(suite, jobs)


class _ProcessBatch:
    """Results of one batch, filled in on the owner's thread as chunks come back."""

    __slots__ = ("done", "left", "results")

    def __init__(self, size: int, chunks: int, done: Done) -> None:
        self.results = [False] * size
        self.left = chunks
        self.done = done


class ProcessChecker:
    """A bounded pool of worker processes that check signatures; results come back to
    the event loop through ``post`` (``loop.call_soon_threadsafe``). Use from that loop
    only. Suites are looked up by name in the workers, so only registered suites go
    there; any other suite, or a pool that broke, is checked inline."""

    def __init__(
        self,
        processes: int,
        post: Post,
        *,
        chunk_jobs: int = CHUNK_JOBS,
        batches_max: int = BATCHES_MAX,
        jobs_min: int = JOBS_MIN,
    ) -> None:
        if not 1 <= processes <= PROCESSES_MAX:
            raise ValueError(f"processes must be from 1 to {PROCESSES_MAX}")
        if chunk_jobs < 1 or batches_max < 1:
            raise ValueError("chunk_jobs and batches_max must be positive")
        # "spawn": a fork of a process running an event loop and threads could copy
        # a lock held at that instant.
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(processes, mp_context=context)
        self._post = post
        self._chunk_jobs = chunk_jobs
        self._batches_max = batches_max
        self._jobs_min = max(1, jobs_min)
        self._in_flight = 0  # touched on the loop's thread only
        self._closed = False
        self._broken = False
        self.processes = processes

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def start(self, suite: CryptoSuite, jobs: Sequence[SignatureJob], done: Done) -> bool:
        if (
            self._closed
            or self._broken
            or len(jobs) < self._jobs_min
            or self._in_flight >= self._batches_max
            or not _registered(suite)
        ):
            return False
        size = self._chunk_jobs
        offsets = range(0, len(jobs), size)
        batch = _ProcessBatch(len(jobs), len(offsets), done)
        self._in_flight += 1
        for offset in offsets:
            chunk = list(jobs[offset : offset + size])
            try:
                future = self._pool.submit(_verify_in_worker, suite.name, chunk)
            except RuntimeError:  # the pool broke or shut down: check this chunk here
                self._broken = True
                self._chunk_done(batch, offset, verify_jobs(suite, chunk))
                continue
            future.add_done_callback(functools.partial(self._report, batch, suite, offset, chunk))
        return True

    def close(self) -> None:
        """Stop taking work and stop the workers; batches not finished never report."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _report(
        self,
        batch: _ProcessBatch,
        suite: CryptoSuite,
        offset: int,
        chunk: list[SignatureJob],
        future: Future[list[bool]],
    ) -> None:
        # On the pool's own thread: hand over to the loop.
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
            self._post(lambda: self._collect(future, batch, suite, offset, chunk))

    def _collect(
        self,
        future: Future[list[bool]],
        batch: _ProcessBatch,
        suite: CryptoSuite,
        offset: int,
        chunk: list[SignatureJob],
    ) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is None:
            results = future.result()
        else:
            # A worker died or failed: never guess, check the chunk here instead.
            log.warning("signature worker failed (%r); checking inline", error)
            self._broken = True
            results = verify_jobs(suite, chunk)
        if len(results) != len(chunk):
            results = verify_jobs(suite, chunk)
        self._chunk_done(batch, offset, results)

    def _chunk_done(self, batch: _ProcessBatch, offset: int, results: list[bool]) -> None:
        batch.results[offset : offset + len(results)] = results
        batch.left -= 1
        if batch.left == 0:
            self._in_flight -= 1
            if not self._closed:
                batch.done(batch.results)


def _registered(suite: CryptoSuite) -> bool:
    """Whether a worker would build the very same suite from its name."""
    name = getattr(suite, "name", None)
    if not isinstance(name, str):
        return False
    try:
        return get_suite(name) is suite
    except CryptoError:
        return False
