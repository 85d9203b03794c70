"""The load process: submits pre-signed transactions through the public API
and learns commit times by walking new blocks.

Runs apart from the bench driver (``python -m chaincity.bench.loadgen PLAN
RESULT``) so that its CPU is not mistaken for the nodes' and the nodes see a
client over real sockets. It records raw times only; the driver turns them
into figures with ``chaincity.bench.stats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from chaincity.bench import stats

MSGPACK_TYPE = "application/msgpack"
RESPONSE_SIZE_MAX = 64 * 1024 * 1024
PLAN_SIZE_MAX = 1024 * 1024 * 1024
HTTP_TIMEOUT_S = 60.0
RETRY_AFTER_MAX_S = 5.0
BLOCK_WAIT_MS = 500  # one request waits this long for the next block
NO_BLOCK_PAUSE_S = 0.005
BLOCKS_KEPT_MAX = 1_000_000
MISSING_REPORTED_MAX = 20
ERRORS_KEPT_MAX = 20
RETRYABLE_CODES = frozenset({"full", "sender_limit"})


class LoadPlan(msgspec.Struct, frozen=True):
    api_urls: list[str]
    chain_id: str
    txs: list[bytes]
    rate_per_s: float  # 0: as fast as the nodes admit
    duration_s: float
    drain_s: float
    batch_txs_max: int = 500
    in_flight_max: int = 8
    poll_period_s: float = 0.1
    tick_s: float = 0.01  # open loop: how often due transactions are posted
    first_height: int = 0  # blocks below hold none of the run's transactions


class LoadResult(msgspec.Struct):
    load_start_s: float
    load_end_s: float
    submit_times_s: dict[str, float]
    commit_times_s: dict[str, float]
    refusals: dict[str, int]
    rejected: dict[str, int]
    not_sent: int
    transport_errors: int
    errors: list[str]
    uncommitted: int  # accepted but not seen committed
    missing: dict[str, str]  # a sample of those: id -> status the node gave
    # (height, transactions, seen at, header timestamp ms) of every non-empty block
    blocks: list[tuple[int, int, float, int]]
    cpu_s: float = 0.0  # this load process's own CPU time, start to end


@dataclass
class _Run:
    plan: LoadPlan
    session: aiohttp.ClientSession
    start_s: float = 0.0
    sent: int = 0
    submit_times_s: dict[str, float] = field(default_factory=dict)
    commit_times_s: dict[str, float] = field(default_factory=dict)
    # accepted and not yet seen committed: kept as it changes, not rescanned
    waiting: set[str] = field(default_factory=set)
    blocks: list[tuple[int, int, float, int]] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    transport_errors: int = 0
    errors: list[str] = field(default_factory=list)
    submitting: bool = True

    def note_error(self, text: str) -> None:
        if len(self.errors) < ERRORS_KEPT_MAX:
            self.errors.append(text)

    def url(self, i: int) -> str:
        base = self.plan.api_urls[i % len(self.plan.api_urls)]
        return f"{base}/v1/chains/{self.plan.chain_id}"


def _bump(counts: dict[str, int], key: str, by: int = 1) -> None:
    counts[key] = counts.get(key, 0) + by


async def _post(run: _Run, url: str, raws: list[bytes]) -> tuple[int, float, list[Any]]:
    """Status, Retry-After seconds and per-transaction results of one batch."""
    body = msgspec.msgpack.encode(raws)
    headers = {"Content-Type": MSGPACK_TYPE}
    async with run.session.post(f"{url}/txs", data=body, headers=headers) as resp:
        doc = msgspec.json.decode(await _read_body(resp))
        retry_s = _retry_after_s(resp.headers.get("Retry-After"))
        results = doc.get("results", []) if isinstance(doc, dict) else []
        return resp.status, retry_s, results if isinstance(results, list) else []


async def _read_body(resp: aiohttp.ClientResponse) -> bytes:
    """The whole body, refusing one larger than RESPONSE_SIZE_MAX."""
    chunks = []
    size = 0
    async for chunk in resp.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > RESPONSE_SIZE_MAX:
            raise aiohttp.ClientPayloadError(f"response larger than {RESPONSE_SIZE_MAX} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after_s(text: str | None) -> float:
    try:
        return min(max(float(text or "1"), 0.0), RETRY_AFTER_MAX_S)
    except ValueError:
        return 1.0


def _settle(run: _Run, raws: list[bytes], results: list[Any], sent_s: list[float]) -> list[int]:
    """Record accepted ids and refusals; return the indexes worth retrying."""
    retry = []
    for i, res in enumerate(results[: len(raws)]):
        if not isinstance(res, dict):
            continue
        code = res.get("code")
        tid = res.get("id")
        if code is None and isinstance(tid, str):
            run.submit_times_s[tid] = sent_s[i]
            if tid not in run.commit_times_s:
                run.waiting.add(tid)
        elif code in RETRYABLE_CODES:
            _bump(run.refusals, str(code))
            retry.append(i)
        else:
            _bump(run.rejected, str(code))
    return retry


async def _send_max(run: _Run, worker: int, cursor: list[int], deadline_s: float) -> None:
    """One of ``in_flight_max`` senders pulling batches off a shared cursor."""
    plan = run.plan
    while time.monotonic() < deadline_s and cursor[0] < len(plan.txs):
        lo = cursor[0]
        hi = min(lo + plan.batch_txs_max, len(plan.txs))
        cursor[0] = hi
        pending = list(plan.txs[lo:hi])
        while pending and time.monotonic() < deadline_s:
            pending = await _send_once(run, worker, pending)
        run.sent += hi - lo - len(pending)


async def _send_once(run: _Run, worker: int, raws: list[bytes]) -> list[bytes]:
    """Post one batch; return the refused transactions, to post again after Retry-After."""
    now_s = time.monotonic()
    try:
        status, retry_s, results = await _post(run, run.url(worker), raws)
    except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as exc:
        run.transport_errors += len(raws)
        run.note_error(f"{type(exc).__name__}: {exc}")
        return []
    if status == 503 or status == 202:
        again = _settle(run, raws, results, [now_s] * len(raws))
        if status == 503 and not results:
            _bump(run.refusals, "full", len(raws))
            again = list(range(len(raws)))
        if again:
            await asyncio.sleep(retry_s)
            return [raws[i] for i in again]
        return []
    _bump(run.rejected, f"http_{status}", len(raws))
    run.note_error(f"HTTP {status} for a batch of {len(raws)}")
    return []


async def _send_at_rate(run: _Run, deadline_s: float) -> None:
    """Open loop: every tick, post what is due, whatever the node answers."""
    plan = run.plan
    offsets = stats.send_offsets_s(len(plan.txs), plan.rate_per_s)
    gate = asyncio.Semaphore(plan.in_flight_max)
    tasks: set[asyncio.Task[None]] = set()
    batch_no = 0
    while run.sent < len(plan.txs) and time.monotonic() < deadline_s:
        due = stats.due_count(offsets, time.monotonic() - run.start_s, run.sent)
        while due > 0:
            lo = run.sent
            hi = lo + min(due, plan.batch_txs_max)
            run.sent, due = hi, due - (hi - lo)
            await gate.acquire()
            due_s = [run.start_s + offsets[i] for i in range(lo, hi)]
            task = asyncio.create_task(_send_due(run, batch_no, plan.txs[lo:hi], due_s, gate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            batch_no += 1
        await asyncio.sleep(plan.tick_s)
    if tasks:
        await asyncio.gather(*tasks)


async def _send_due(
    run: _Run, worker: int, raws: list[bytes], due_s: list[float], gate: asyncio.Semaphore
) -> None:
    try:
        status, _, results = await _post(run, run.url(worker), raws)
        if status in (202, 503):
            # Latency counts from the due time: a late sender must not hide queueing.
            _settle(run, raws, results, due_s)
            if status == 503 and not results:
                _bump(run.refusals, "full", len(raws))
        else:
            _bump(run.rejected, f"http_{status}", len(raws))
    except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as exc:
        run.transport_errors += len(raws)
        run.note_error(f"{type(exc).__name__}: {exc}")
    finally:
        gate.release()


async def _get_json(run: _Run, url: str) -> Any:
    async with run.session.get(url) as resp:
        if resp.status != 200:
            raise aiohttp.ClientResponseError(
                resp.request_info, (), status=resp.status, message=f"GET {url}"
            )
        return msgspec.json.decode(await _read_body(resp))


async def _poll_commits(run: _Run, stop: asyncio.Event) -> None:
    """Follow the first node's chain block by block: each request waits until the
    next height commits, so commit times are stamped within a few milliseconds."""
    base = run.url(0)
    height = run.plan.first_height
    while not stop.is_set():
        try:
            block = await _next_block(run, f"{base}/blocks/{height}?wait_ms={BLOCK_WAIT_MS}")
            if block is None:
                # A node that does not wait answers at once: do not spin on it.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), NO_BLOCK_PAUSE_S)
                continue
            now_s = time.monotonic()
            tids = block.get("tx_ids", [])
            for tid in tids:
                if isinstance(tid, str):
                    run.commit_times_s.setdefault(tid, now_s)
                    run.waiting.discard(tid)
            stamp_ms = block["header"].get("timestamp_ms")
            if tids and isinstance(stamp_ms, int) and len(run.blocks) < BLOCKS_KEPT_MAX:
                run.blocks.append((height, len(tids), now_s, stamp_ms))
            height += 1
        except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError, KeyError, ValueError) as e:
            run.note_error(f"poll: {type(e).__name__}: {e}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), run.plan.poll_period_s)


async def _next_block(run: _Run, url: str) -> Any:
    """The block at ``url``, or None if it did not commit within the wait."""
    async with run.session.get(url) as resp:
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise aiohttp.ClientResponseError(
                resp.request_info, (), status=resp.status, message=f"GET {url}"
            )
        return msgspec.json.decode(await _read_body(resp))


def _uncommitted(run: _Run) -> list[str]:
    return [tid for tid in run.submit_times_s if tid not in run.commit_times_s]


async def _drain(run: _Run) -> None:
    deadline_s = time.monotonic() + run.plan.drain_s
    while run.waiting and time.monotonic() < deadline_s:
        await asyncio.sleep(run.plan.poll_period_s)


async def _missing_statuses(run: _Run) -> dict[str, str]:
    out: dict[str, str] = {}
    for tid in _uncommitted(run)[:MISSING_REPORTED_MAX]:
        try:
            doc = await _get_json(run, f"{run.url(0)}/txs/{tid}")
            out[tid] = str(doc.get("status", "?"))
        except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as exc:
            out[tid] = f"unreadable: {type(exc).__name__}"
    return out


async def run_load(plan: LoadPlan) -> LoadResult:
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=plan.in_flight_max + 2)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        run = _Run(plan, session)
        stop = asyncio.Event()
        poller = asyncio.create_task(_poll_commits(run, stop))
        run.start_s = time.monotonic()
        deadline_s = run.start_s + plan.duration_s
        if plan.rate_per_s > 0:
            await _send_at_rate(run, deadline_s)
        else:
            cursor = [0]
            await asyncio.gather(
                *(_send_max(run, w, cursor, deadline_s) for w in range(plan.in_flight_max))
            )
        load_end_s = time.monotonic()
        await _drain(run)
        stop.set()
        await poller
        missing = await _missing_statuses(run)
        return LoadResult(
            run.start_s,
            load_end_s,
            run.submit_times_s,
            {t: c for t, c in run.commit_times_s.items() if t in run.submit_times_s},
            run.refusals,
            run.rejected,
            len(plan.txs) - run.sent,
            run.transport_errors,
            run.errors,
            len(_uncommitted(run)),
            missing,
            run.blocks,
            time.process_time(),
        )


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m chaincity.bench.loadgen PLAN RESULT", file=sys.stderr)
        return 2
    plan_path, result_path = Path(argv[0]), Path(argv[1])
    data = plan_path.read_bytes()
    if len(data) > PLAN_SIZE_MAX:
        print(f"{plan_path}: plan larger than {PLAN_SIZE_MAX} bytes", file=sys.stderr)
        return 2
    plan = msgspec.msgpack.decode(data, type=LoadPlan)
    result = asyncio.run(run_load(plan))
    tmp = result_path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.msgpack.encode(result))
    tmp.replace(result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
