"""The HTTP API against a fake node: status codes and reasons for every bad input."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from chaincity.api.server import BATCH_TXS_MAX, Api, SubmitOutcome
from chaincity.mempool import AdmitError, Reject


class FakeChain:
    chain_id = "main"

    def __init__(self) -> None:
        self.submitted: list[bytes] = []
        self.full = False
        self.tip = 7

    async def submit(self, raws: list[bytes]) -> list[SubmitOutcome]:
        out = []
        for raw in raws:
            tid = raw[:32].ljust(32, b"\x00")
            if self.full:
                out.append(SubmitOutcome(tid, AdmitError(Reject.FULL, "mempool is full", tid)))
            elif raw.startswith(b"bad"):
                out.append(SubmitOutcome(tid, AdmitError(Reject.BAD_SIGNATURE, "bad sig", tid)))
            elif raw.startswith(b"dup"):
                out.append(SubmitOutcome(tid, AdmitError(Reject.DUPLICATE, "pending", tid)))
            else:
                self.submitted.append(raw)
                out.append(SubmitOutcome(tid))
        return out

    def tx_status(self, tid: bytes) -> dict[str, Any]:
        return {"id": tid.hex(), "status": "unknown"}

    def block(self, height: int | None) -> dict[str, Any] | None:
        if height is None:
            return {"height": self.tip}
        return {"height": height} if height <= self.tip else None

    def tip_height(self) -> int:
        return self.tip

    async def wait_commit(self, timeout_s: float) -> None:
        await asyncio.sleep(min(timeout_s, 0.005))  # the test moves the tip by hand

    def state(self, contract: str, key: bytes, with_proof: bool) -> dict[str, Any]:
        return {"contract": contract, "key": key.decode(), "proof": with_proof}


class FakeNode:
    def __init__(self) -> None:
        self.main = FakeChain()

    def chain(self, chain_id: str) -> FakeChain | None:
        return self.main if chain_id == "main" else None

    def status(self) -> dict[str, Any]:
        return {"node": "n0"}

    def metrics_text(self) -> str:
        return "chaincity_height 7\n"


@pytest.fixture
async def client() -> AsyncIterator[tuple[TestClient[Any, Any], FakeNode]]:
    node = FakeNode()
    async with TestClient(TestServer(Api(node).app())) as c:
        yield c, node


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


async def test_single_tx_accepted(client: tuple[TestClient[Any, Any], FakeNode]) -> None:
    c, node = client
    resp = await c.post("/v1/chains/main/txs", json={"tx": b64(b"good-tx")})
    assert resp.status == 202
    assert (await resp.json())["id"] == b"good-tx".ljust(32, b"\x00").hex()
    assert node.main.submitted == [b"good-tx"]


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [(b"bad-sig", 400, "bad_signature"), (b"dup", 409, "duplicate")],
)
async def test_single_tx_rejections_carry_reason(
    client: tuple[TestClient[Any, Any], FakeNode], raw: bytes, status: int, code: str
) -> None:
    c, _ = client
    resp = await c.post("/v1/chains/main/txs", json={"tx": b64(raw)})
    assert resp.status == status
    body = await resp.json()
    assert body["code"] == code and body["error"]


async def test_full_pool_answers_503_with_retry_after(
    client: tuple[TestClient[Any, Any], FakeNode],
) -> None:
    c, node = client
    node.main.full = True
    resp = await c.post("/v1/chains/main/txs", json={"tx": b64(b"x")})
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    resp = await c.post("/v1/chains/main/txs", json={"txs": [b64(b"x"), b64(b"y")]})
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"


async def test_batches_in_json_and_msgpack(client: tuple[TestClient[Any, Any], FakeNode]) -> None:
    c, node = client
    resp = await c.post("/v1/chains/main/txs", json={"txs": [b64(b"a"), b64(b"bad")]})
    assert resp.status == 202
    body = await resp.json()
    assert body["accepted"] == 1 and body["results"][1]["code"] == "bad_signature"
    resp = await c.post(
        "/v1/chains/main/txs",
        data=msgspec.msgpack.encode([b"m1", b"m2"]),
        headers={"Content-Type": "application/msgpack"},
    )
    assert resp.status == 202 and (await resp.json())["accepted"] == 2
    assert node.main.submitted == [b"a", b"m1", b"m2"]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"data": b"{not json"}, "not valid JSON"),
        ({"json": [1, 2]}, "body must be"),
        ({"json": {"tx": 5}}, "base64"),
        ({"json": {"tx": "%%%"}}, "not valid base64"),
        ({"json": {"txs": []}}, "empty batch"),
        ({"json": {"txs": ["AA=="] * (BATCH_TXS_MAX + 1)}}, "more than"),
        ({"json": {"tx": "AA==", "extra": 1}}, "body must be"),
        (
            {"data": b"\xc1", "headers": {"Content-Type": "application/msgpack"}},
            "msgpack array",
        ),
    ],
)
async def test_malformed_submissions_are_400_and_change_nothing(
    client: tuple[TestClient[Any, Any], FakeNode], kwargs: dict[str, Any], reason: str
) -> None:
    c, node = client
    resp = await c.post("/v1/chains/main/txs", **kwargs)
    assert resp.status == 400
    assert reason in (await resp.json())["error"]
    assert node.main.submitted == []


async def test_oversized_body_is_413(client: tuple[TestClient[Any, Any], FakeNode]) -> None:
    c, node = client
    resp = await c.post("/v1/chains/main/txs", data=b"x" * (17 * 1024 * 1024))
    assert resp.status == 413
    assert node.main.submitted == []


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/chains/nope/txs/" + "00" * 32, 404),
        ("/v1/chains/main/txs/zz", 400),
        ("/v1/chains/main/txs/" + "zz" * 32, 400),
        ("/v1/chains/main/blocks/-1", 400),
        ("/v1/chains/main/blocks/99999999999999999999999", 400),
        ("/v1/chains/main/blocks/8", 404),
        ("/v1/chains/main/blocks/8?wait_ms=-1", 400),
        ("/v1/chains/main/blocks/8?wait_ms=30001", 400),
        ("/v1/chains/main/blocks/8?wait_ms=1e3", 400),
        ("/v1/chains/main/blocks/%C2%B2", 400),  # a superscript two: isdigit() but not int()
        ("/v1/chains/main/blocks/%D9%A1", 400),  # an Arabic-Indic one
        ("/v1/chains/main/blocks/8?wait_ms=%C2%B2", 400),
        ("/v1/chains/main/state/kv/a?proof=maybe", 400),
        ("/v1/chains/main/state/" + "c" * 65 + "/a", 400),
        ("/v1/nothing", 404),
    ],
)
async def test_bad_reads_are_4xx(
    client: tuple[TestClient[Any, Any], FakeNode], path: str, status: int
) -> None:
    c, _ = client
    resp = await c.get(path)
    assert resp.status == status
    assert "error" in await resp.json()


async def test_a_block_request_can_wait_for_the_block(
    client: tuple[TestClient[Any, Any], FakeNode],
) -> None:
    import asyncio

    c, node = client
    waiting = asyncio.ensure_future(c.get("/v1/chains/main/blocks/8?wait_ms=10000"))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    node.main.tip = 8  # height 8 commits
    resp = await asyncio.wait_for(waiting, 5)
    assert resp.status == 200 and (await resp.json()) == {"height": 8}
    # Not committed within the wait: 404, as without waiting.
    resp = await c.get("/v1/chains/main/blocks/9?wait_ms=20")
    assert resp.status == 404 and "error" in await resp.json()


async def test_reads(client: tuple[TestClient[Any, Any], FakeNode]) -> None:
    c, _ = client
    assert (await (await c.get("/v1/chains/main/blocks/latest")).json()) == {"height": 7}
    state = await (await c.get("/v1/chains/main/state/kv/a%20b?proof=true")).json()
    assert state == {"contract": "kv", "key": "a b", "proof": True}
    assert (await (await c.get("/v1/status")).json()) == {"node": "n0"}
    metrics = await c.get("/metrics")
    assert "chaincity_height 7" in await metrics.text()
