"""The load process against a fake node on 127.0.0.1: refusals, retries, commit walk."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from aiohttp import web

from chaincity.bench.loadgen import LoadPlan, _drain, _Run, _settle, run_load

BAD = b"bad-signature"
LOST = b"never-committed"


def _tid(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@dataclass
class FakeNode:
    """Accepts batches, refuses the first one as full, commits each batch as a block."""

    full_replies_left: int = 1
    blocks: list[list[str]] = field(default_factory=lambda: [[]])
    posts: int = 0

    async def post_txs(self, request: web.Request) -> web.Response:
        self.posts += 1
        raws = msgspec.msgpack.decode(await request.read(), type=list[bytes])
        if self.full_replies_left > 0:
            self.full_replies_left -= 1
            results = [{"id": _tid(r), "error": "full", "code": "full"} for r in raws]
            return web.json_response(
                {"error": "mempool is full", "results": results},
                status=503,
                headers={"Retry-After": "0"},
            )
        results: list[dict[str, Any]] = []
        block = []
        for raw in raws:
            if raw == BAD:
                results.append({"id": _tid(raw), "error": "bad", "code": "bad_signature"})
                continue
            results.append({"id": _tid(raw)})
            if raw != LOST:
                block.append(_tid(raw))
        self.blocks.append(block)
        accepted = sum(1 for r in results if "code" not in r)
        return web.json_response({"accepted": accepted, "results": results}, status=202)

    async def get_block(self, request: web.Request) -> web.Response:
        text = request.match_info["height"]
        height = len(self.blocks) - 1 if text == "latest" else int(text)
        if height >= len(self.blocks):
            return web.json_response({"error": "no block"}, status=404)
        header = {"height": height, "timestamp_ms": 1000 * height}
        return web.json_response({"header": header, "tx_ids": self.blocks[height]})

    async def get_tx(self, request: web.Request) -> web.Response:
        tid = request.match_info["tx_id"]
        committed = any(tid in b for b in self.blocks)
        return web.json_response({"status": "committed" if committed else "pending"})


@pytest.fixture
async def fake_node() -> AsyncIterator[tuple[FakeNode, str]]:
    node = FakeNode()
    app = web.Application()
    app.router.add_post("/v1/chains/main/txs", node.post_txs)
    app.router.add_get("/v1/chains/main/blocks/{height}", node.get_block)
    app.router.add_get("/v1/chains/main/txs/{tx_id}", node.get_tx)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield node, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _plan(url: str, txs: list[bytes], rate: float) -> LoadPlan:
    return LoadPlan(
        api_urls=[url],
        chain_id="main",
        txs=txs,
        rate_per_s=rate,
        duration_s=10.0,
        drain_s=1.0,
        batch_txs_max=10,
        in_flight_max=2,
        poll_period_s=0.02,
    )


async def test_max_mode_retries_refusals_and_sees_every_commit(
    fake_node: tuple[FakeNode, str],
) -> None:
    node, url = fake_node
    txs = [f"tx-{i}".encode() for i in range(45)]
    result = await run_load(_plan(url, txs, rate=0.0))
    assert result.refusals == {"full": 10}  # the first batch, refused whole, then retried
    assert len(result.submit_times_s) == 45
    assert set(result.commit_times_s) == set(result.submit_times_s)
    assert result.uncommitted == 0 and result.missing == {}
    assert result.not_sent == 0
    assert node.posts == 6  # 5 batches + 1 retry
    assert sum(b[1] for b in result.blocks) == 45
    assert sorted(b[0] for b in result.blocks) == list(range(1, 6))
    for tid, committed in result.commit_times_s.items():
        assert committed >= result.submit_times_s[tid]


async def test_rejected_and_lost_transactions_are_reported(
    fake_node: tuple[FakeNode, str],
) -> None:
    node, url = fake_node
    node.full_replies_left = 0
    txs = [b"ok-1", BAD, LOST, b"ok-2"]
    result = await run_load(_plan(url, txs, rate=0.0))
    assert result.rejected == {"bad_signature": 1}
    assert len(result.submit_times_s) == 3
    assert result.uncommitted == 1
    assert result.missing == {_tid(LOST): "pending"}


async def test_rate_mode_stamps_due_times_and_does_not_retry(
    fake_node: tuple[FakeNode, str],
) -> None:
    _, url = fake_node
    txs = [f"r-{i}".encode() for i in range(20)]
    result = await run_load(_plan(url, txs, rate=400.0))
    # Refused ones are counted, not retried, in open loop.
    refused = result.refusals.get("full", 0)
    assert refused >= 1
    assert len(result.submit_times_s) == 20 - refused
    offsets = sorted(t - result.load_start_s for t in result.submit_times_s.values())
    # Submit times are the schedule's due times: multiples of 1/400 s.
    for off in offsets:
        assert abs(off * 400 - round(off * 400)) < 1e-6
    assert result.uncommitted == 0


async def test_what_awaits_commit_is_kept_as_answers_and_blocks_arrive() -> None:
    plan = msgspec.structs.replace(_plan("http://127.0.0.1:9", [], 0.0), drain_s=3600.0)
    run = _Run(plan, None)  # type: ignore[arg-type]  # no request is made
    run.commit_times_s["b"] = 1.0  # its block was seen before its answer came back
    _settle(run, [b"x", b"y", b"z"], [{"id": "a"}, {"id": "b"}, {"code": "full"}], [0.0] * 3)
    assert run.waiting == {"a"}
    with pytest.raises(TimeoutError):  # the drain waits while "a" is not committed ...
        await asyncio.wait_for(_drain(run), 0.2)
    run.waiting.discard("a")
    await asyncio.wait_for(_drain(run), 5.0)  # ... and ends at once when nothing waits
