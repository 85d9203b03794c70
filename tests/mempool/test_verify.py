"""The signature checkers (threads, processes): chunks, order of results, bounds, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable

import pytest

from chaincity.crypto import CryptoSuite, get_suite
from chaincity.mempool import ProcessChecker, SignatureJob, ThreadedChecker, verify_jobs
from tests.support import ALICE_KEY, SUITE

WAIT_S = 30  # a bound on every wait below; none of them is a timing assertion


def jobs(count: int, bad: set[int]) -> list[SignatureJob]:
    key = SUITE.public_key(ALICE_KEY)
    out = []
    for i in range(count):
        message = b"message %d" % i
        signature = SUITE.sign(ALICE_KEY, message)
        out.append((key, message, bytes(64) if i in bad else signature))
    return out


class GatedSuite:
    """Verifies like the real suite once ``gate`` opens: holds a worker busy."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.threads: set[str] = set()

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        self.threads.add(threading.current_thread().name)
        if not self.gate.wait(WAIT_S):
            raise RuntimeError("gate never opened")
        return SUITE.verify(public_key, message, signature)


class RaisingSuite:
    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        raise TypeError("a bug in the suite")


def as_suite(obj: object) -> CryptoSuite:
    return obj  # type: ignore[return-value]


async def run_batch(
    checker: ThreadedChecker, suite: CryptoSuite, batch: list[SignatureJob]
) -> list[bool]:
    future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
    assert checker.start(suite, batch, future.set_result)
    return await asyncio.wait_for(future, WAIT_S)


def make_checker(threads: int, **options: int) -> ThreadedChecker:
    options.setdefault("jobs_min", 1)
    return ThreadedChecker(threads, asyncio.get_running_loop().call_soon_threadsafe, **options)


async def test_results_come_back_in_job_order_across_chunks() -> None:
    bad = {0, 63, 64, 130, 299}
    batch = jobs(300, bad)
    checker = make_checker(3, chunk_jobs=64)
    try:
        got = await run_batch(checker, SUITE, batch)
    finally:
        checker.close()
    assert got == [i not in bad for i in range(300)]
    assert got == verify_jobs(SUITE, batch)
    assert checker.in_flight == 0


async def test_chunks_of_one_batch_run_on_several_threads() -> None:
    suite = GatedSuite()
    checker = make_checker(2, chunk_jobs=1)
    try:
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        assert checker.start(as_suite(suite), jobs(2, set()), future.set_result)
        for _ in range(WAIT_S * 100):  # both workers reach the gate
            if len(suite.threads) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(suite.threads) == 2
        suite.gate.set()
        assert await asyncio.wait_for(future, WAIT_S) == [True, True]
    finally:
        suite.gate.set()
        checker.close()


async def test_batches_beyond_the_bound_are_refused_for_inline_checking() -> None:
    suite = GatedSuite()
    checker = make_checker(2, batches_max=1)
    try:
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        assert checker.start(as_suite(suite), jobs(3, {1}), future.set_result)
        assert checker.in_flight == 1
        assert not checker.start(SUITE, jobs(1, set()), lambda _: None)
        suite.gate.set()
        assert await asyncio.wait_for(future, WAIT_S) == [True, False, True]
        assert checker.in_flight == 0
        # Room again once the first batch has reported.
        assert await run_batch(checker, SUITE, jobs(1, set())) == [True]
    finally:
        suite.gate.set()
        checker.close()


async def test_a_suite_that_raises_refuses_rather_than_admits() -> None:
    checker = make_checker(2)
    try:
        assert await run_batch(checker, as_suite(RaisingSuite()), jobs(3, set())) == [False] * 3
    finally:
        checker.close()


async def test_closed_checker_takes_no_work_and_drops_unfinished_batches() -> None:
    suite = GatedSuite()
    checker = make_checker(2, chunk_jobs=1)
    reported: list[list[bool]] = []
    assert checker.start(as_suite(suite), jobs(4, set()), reported.append)
    closer = threading.Thread(target=checker.close)
    closer.start()
    suite.gate.set()
    closer.join(WAIT_S)
    assert not closer.is_alive()
    await asyncio.sleep(0)  # let any posted report run
    assert reported == []
    assert not checker.start(SUITE, jobs(1, set()), reported.append)


def test_empty_and_small_batches_are_left_to_the_caller() -> None:
    posted: list[Callable[[], None]] = []
    checker = ThreadedChecker(2, posted.append, jobs_min=4)
    try:
        assert not checker.start(SUITE, [], lambda _: None)
        assert not checker.start(SUITE, jobs(3, set()), lambda _: None)
        assert checker.in_flight == 0
    finally:
        checker.close()
    assert posted == []


@pytest.mark.parametrize("threads", [0, 257])
def test_thread_count_is_bounded(threads: int) -> None:
    with pytest.raises(ValueError, match="threads"):
        ThreadedChecker(threads, lambda fn: None)


@pytest.mark.parametrize("name", ["ed25519-sha256", "sm2-sm3"])
async def test_both_suites_check_in_threads_as_inline(name: str) -> None:
    suite = get_suite(name)
    private = suite.generate_private_key()
    key = suite.public_key(private)
    batch = [(key, b"m%d" % i, suite.sign(private, b"m%d" % i)) for i in range(6)]
    batch[2] = (key, b"other", batch[2][2])
    checker = make_checker(2, chunk_jobs=2)
    try:
        got = await run_batch(checker, suite, batch)
    finally:
        checker.close()
    assert got == verify_jobs(suite, batch) == [True, True, False, True, True, True]


def make_process_checker(processes: int, **options: int) -> ProcessChecker:
    options.setdefault("jobs_min", 1)
    return ProcessChecker(processes, asyncio.get_running_loop().call_soon_threadsafe, **options)


async def test_processes_give_results_in_job_order_across_chunks() -> None:
    bad = {0, 63, 64, 130, 299}
    batch = jobs(300, bad)
    checker = make_process_checker(2, chunk_jobs=64)
    try:
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        assert checker.start(SUITE, batch, future.set_result)
        assert checker.in_flight == 1
        got = await asyncio.wait_for(future, WAIT_S)
    finally:
        checker.close()
    assert got == [i not in bad for i in range(300)]
    assert checker.in_flight == 0


async def test_processes_leave_unregistered_suites_and_small_batches_inline() -> None:
    checker = make_process_checker(1, jobs_min=4)
    try:
        assert not checker.start(as_suite(RaisingSuite()), jobs(8, set()), lambda _: None)
        assert not checker.start(SUITE, jobs(3, set()), lambda _: None)
        assert checker.in_flight == 0
    finally:
        checker.close()
    assert not checker.start(SUITE, jobs(8, set()), lambda _: None)


async def test_a_dead_worker_means_inline_checks_never_an_admission() -> None:
    checker = make_process_checker(1)
    try:
        assert await run_process_batch(checker, jobs(2, set())) == [True, True]
        for pid in list(checker._pool._processes):  # the workers, as the pool knows them
            os.kill(pid, signal.SIGKILL)
        # The batch in flight when the pool breaks is checked here instead.
        assert await run_process_batch(checker, jobs(3, {1}), allow_inline=True) == [
            True,
            False,
            True,
        ]
        assert not checker.start(SUITE, jobs(2, set()), lambda _: None)
    finally:
        checker.close()


async def run_process_batch(
    checker: ProcessChecker, batch: list[SignatureJob], *, allow_inline: bool = False
) -> list[bool]:
    future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
    started = checker.start(SUITE, batch, future.set_result)
    if not started:
        assert allow_inline
        return verify_jobs(SUITE, batch)
    return await asyncio.wait_for(future, WAIT_S)
