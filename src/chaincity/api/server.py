"""HTTP routes over a node's chains; the node supplies a NodeService.

Every request from outside may be hostile: bodies are size-capped, every field
is checked, and a bad request gets a 4xx with a reason in ``{"error": ...}``.
A 5xx means the node failed, never that the request was bad.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
from aiohttp import web

from chaincity.mempool import AdmitError, Reject
from chaincity.types.primitives import BLOCK_TXS_MAX, TX_SIZE_MAX

log = logging.getLogger("chaincity.api")

BODY_SIZE_MAX = 16 * 1024 * 1024
BATCH_TXS_MAX = 5_000
RETRY_AFTER_S = 1
MSGPACK_TYPE = "application/msgpack"
JSON_TYPE = "application/json"
BLOCK_WAIT_MS_MAX = 30_000  # ?wait_ms= on a height not committed yet
BLOCK_WAITERS_MAX = 256  # requests waiting for a block at once, all chains together
BLOCK_WAIT_CHECK_S = 1.0  # a waiting request looks at the tip at least this often

_STATUS_OF_REJECT = {
    Reject.TOO_LARGE: 413,
    Reject.UNAUTHORIZED: 403,
    Reject.DUPLICATE: 409,
    Reject.COMMITTED: 409,
    Reject.SENDER_LIMIT: 429,
    Reject.FULL: 503,
}


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    tx_id: bytes
    error: AdmitError | None = None


class ChainService(Protocol):
    chain_id: str

    async def submit(self, raws: list[bytes]) -> list[SubmitOutcome]: ...

    def tx_status(self, tid: bytes) -> dict[str, Any]: ...

    def block(self, height: int | None) -> dict[str, Any] | None: ...

    def tip_height(self) -> int:
        """The latest committed height (cheap: no storage read)."""
        ...

    async def wait_commit(self, timeout_s: float) -> None:
        """Return when the next block commits, or after ``timeout_s``."""
        ...

    def state(self, contract: str, key: bytes, with_proof: bool) -> dict[str, Any]: ...


class NodeService(Protocol):
    def chain(self, chain_id: str) -> ChainService | None: ...

    def status(self) -> dict[str, Any]: ...

    def metrics_text(self) -> str: ...


class BadRequest(Exception):
    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.status = status


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer, encoded by msgspec: several times faster than the standard
    library's encoder on the big ones (a block lists thousands of ids)."""
    return web.Response(
        body=msgspec.json.encode(data),
        status=status,
        headers=headers,
        content_type=JSON_TYPE,
        charset="utf-8",
    )


def _error(status: int, reason: str, **extra: Any) -> web.Response:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return _json({"error": reason, **extra}, status=status, headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadRequest as exc:
        return _error(exc.status, str(exc))
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"body larger than {BODY_SIZE_MAX} bytes")
    except web.HTTPException as exc:
        if exc.status >= 400:
            return _error(exc.status, exc.reason)
        raise
    except Exception:
        log.exception("internal error serving %s %s", request.method, request.path)
        return _error(500, "internal error")


class Api:
    """Builds the aiohttp application for a node."""

    def __init__(self, node: NodeService) -> None:
        self._node = node
        self._block_waiters = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=BODY_SIZE_MAX, middlewares=[_errors])
        app.router.add_post("/v1/chains/{chain}/txs", self.post_txs)
        app.router.add_get("/v1/chains/{chain}/txs/{tx_id}", self.get_tx)
        app.router.add_get("/v1/chains/{chain}/blocks/{height}", self.get_block)
        app.router.add_get("/v1/chains/{chain}/state/{contract}/{key}", self.get_state)
        app.router.add_get("/v1/status", self.get_status)
        app.router.add_get("/metrics", self.get_metrics)
        return app

    def _chain(self, request: web.Request) -> ChainService:
        name = request.match_info["chain"]
        chain = self._node.chain(name)
        if chain is None:
            raise BadRequest(f"unknown chain {name[:64]!r}", 404)
        return chain

    async def post_txs(self, request: web.Request) -> web.Response:
        chain = self._chain(request)
        raws, single = await _read_txs(request)
        outcomes = await chain.submit(raws)
        if single:
            (out,) = outcomes
            if out.error is not None:
                return _reject_response(out.error)
            return _json({"id": out.tx_id.hex()}, status=202)
        results = [_outcome_json(o) for o in outcomes]
        if outcomes and all(o.error and o.error.reject is Reject.FULL for o in outcomes):
            return _error(503, "mempool is full; retry later", results=results)
        accepted = sum(1 for o in outcomes if o.error is None)
        return _json({"accepted": accepted, "results": results}, status=202)

    async def get_tx(self, request: web.Request) -> web.Response:
        chain = self._chain(request)
        tid = _parse_hex_id(request.match_info["tx_id"])
        return _json(chain.tx_status(tid))

    async def get_block(self, request: web.Request) -> web.Response:
        chain = self._chain(request)
        text = request.match_info["height"]
        height: int | None = None
        if text != "latest":
            height = _uint(text, 19)
            if height is None:
                raise BadRequest("height must be a non-negative integer or 'latest'")
        wait_ms = _wait_ms(request)
        block = chain.block(height)
        if block is None and height is not None and wait_ms:
            block = await self._wait_for_block(chain, height, wait_ms)
        if block is None:
            raise BadRequest(f"no block at height {text}", 404)
        return _json(block)

    async def _wait_for_block(
        self, chain: ChainService, height: int, wait_ms: int
    ) -> dict[str, Any] | None:
        """Answer as soon as ``height`` commits (a client following the chain need not
        poll), or None after ``wait_ms``."""
        if self._block_waiters >= BLOCK_WAITERS_MAX:
            raise BadRequest("too many requests waiting for blocks; retry later", 503)
        self._block_waiters += 1
        try:
            loop = asyncio.get_running_loop()
            deadline_s = loop.time() + wait_ms / 1000
            while True:
                # The tip costs nothing to read: a waiter touches storage once, when
                # its block is there, however many wait.
                if chain.tip_height() >= height:
                    return chain.block(height)
                left_s = deadline_s - loop.time()
                if left_s <= 0:
                    return None
                # Woken by each commit; the bound only guards against a missed one.
                await chain.wait_commit(min(left_s, BLOCK_WAIT_CHECK_S))
        finally:
            self._block_waiters -= 1

    async def get_state(self, request: web.Request) -> web.Response:
        chain = self._chain(request)
        contract = request.match_info["contract"]
        key = request.match_info["key"].encode()
        if not 0 < len(contract) <= 64 or not 0 < len(key) <= 192:
            raise BadRequest("contract must be 1..64 characters and key 1..192 bytes")
        proof = request.query.get("proof", "false").lower()
        if proof not in ("true", "false", "1", "0"):
            raise BadRequest("proof must be true or false")
        return _json(chain.state(contract, key, proof in ("true", "1")))

    async def get_status(self, request: web.Request) -> web.Response:
        return _json(self._node.status())

    async def get_metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self._node.metrics_text(), content_type="text/plain")


async def _read_txs(request: web.Request) -> tuple[list[bytes], bool]:
    """The transactions of a POST body and whether it held a single one."""
    body = await request.read()
    if request.content_type == MSGPACK_TYPE:
        try:
            raws = msgspec.msgpack.decode(body, type=list[bytes])
        except msgspec.MsgspecError:
            raise BadRequest("body must be a msgpack array of transaction bytes") from None
        _check_batch(raws)
        return raws, False
    try:
        doc = msgspec.json.decode(body)
    except msgspec.MsgspecError:
        raise BadRequest("body is not valid JSON") from None
    if isinstance(doc, dict) and set(doc) == {"tx"}:
        return [_b64(doc["tx"])], True
    if isinstance(doc, dict) and set(doc) == {"txs"} and isinstance(doc["txs"], list):
        raws = [_b64(item) for item in doc["txs"]]
        _check_batch(raws)
        return raws, False
    raise BadRequest('body must be {"tx": "<base64>"} or {"txs": ["<base64>", ...]}')


def _wait_ms(request: web.Request) -> int:
    wait_ms = _uint(request.query.get("wait_ms", "0"), 6)
    if wait_ms is None or wait_ms > BLOCK_WAIT_MS_MAX:
        raise BadRequest(f"wait_ms must be an integer from 0 to {BLOCK_WAIT_MS_MAX}")
    return wait_ms


def _uint(text: str, digits_max: int) -> int | None:
    """``text`` as a non-negative integer in ASCII digits (``str.isdigit`` alone
    also passes digits ``int`` refuses, such as superscripts), or None."""
    if not (text.isascii() and text.isdigit()) or len(text) > digits_max:
        return None
    return int(text)


def _check_batch(raws: list[bytes]) -> None:
    if not raws:
        raise BadRequest("empty batch")
    if len(raws) > min(BATCH_TXS_MAX, BLOCK_TXS_MAX):
        raise BadRequest(f"more than {BATCH_TXS_MAX} transactions in one request")


def _b64(item: Any) -> bytes:
    if not isinstance(item, str) or len(item) > TX_SIZE_MAX * 2:
        raise BadRequest("each transaction must be base64 text of at most 96 KiB")
    try:
        return base64.b64decode(item, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("transaction is not valid base64") from None


def _parse_hex_id(text: str) -> bytes:
    if len(text) != 64:
        raise BadRequest("transaction id must be 64 hex characters")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise BadRequest("transaction id must be 64 hex characters") from None


def _outcome_json(out: SubmitOutcome) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": out.tx_id.hex() if out.tx_id else None}
    if out.error is not None:
        doc["error"] = out.error.reason
        doc["code"] = out.error.reject.value
    return doc


def _reject_response(err: AdmitError) -> web.Response:
    status = _STATUS_OF_REJECT.get(err.reject, 400)
    extra: dict[str, Any] = {"code": err.reject.value}
    if err.tx_id:
        extra["id"] = err.tx_id.hex()
    return _error(status, err.reason, **extra)
