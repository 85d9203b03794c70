"""The SDK against a real HTTP server on 127.0.0.1 (fake node behind it)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from chaincity.api.server import Api
from chaincity.client import Client, ClientError, Signer
from chaincity.codec import decode, decode_value
from chaincity.crypto.keyfile import key_pair_from_private, save_key_pair
from chaincity.types.identity import dump_cert
from chaincity.types.tx import Transaction, verify_tx_signature
from tests.api.test_server import FakeNode
from tests.support import ALICE_KEY, BOB_KEY, SUITE, member_cert


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, FakeNode]]:
    node = FakeNode()
    server = TestServer(Api(node).app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")), node
    finally:
        await server.close()


async def in_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def write_identity(tmp_path: Path, key: bytes) -> tuple[Path, Path]:
    key_path, cert_path = tmp_path / "member.key", tmp_path / "member.cert"
    save_key_pair(key_pair_from_private(SUITE, key), key_path)
    cert_path.write_bytes(dump_cert(member_cert(key, "alice"), SUITE.name))
    return key_path, cert_path


def test_signer_builds_verifiable_transactions(tmp_path: Path) -> None:
    signer = Signer.from_files(*write_identity(tmp_path, ALICE_KEY))
    raw = signer.build("kv", "put", {"key": "a", "value": 1}, expiry_height=10)
    tx = decode(raw, Transaction)
    assert verify_tx_signature(SUITE, tx)
    assert decode_value(tx.body.args) == {"key": "a", "value": 1}
    assert tx.body.expiry_height == 10 and tx.body.chain_id == "main"
    other = signer.build("kv", "put", {"key": "a", "value": 1}, expiry_height=10)
    assert other != raw  # fresh nonce each time


def test_signer_refuses_a_certificate_of_another_key(tmp_path: Path) -> None:
    key_path, cert_path = write_identity(tmp_path, ALICE_KEY)
    cert_path.write_bytes(dump_cert(member_cert(BOB_KEY, "bob"), SUITE.name))
    with pytest.raises(ValueError, match="does not belong"):
        Signer.from_files(key_path, cert_path)


async def test_submit_and_read_through_http(served: tuple[str, FakeNode], tmp_path: Path) -> None:
    url, node = served
    client = Client(url)
    signer = Signer.from_files(*write_identity(tmp_path, ALICE_KEY))
    raw = signer.build("kv", "put", {"key": "a", "value": 1}, expiry_height=10)
    tx_id = await in_thread(client.submit, raw)
    assert len(tx_id) == 64 and node.main.submitted == [raw]
    results = await in_thread(client.submit_batch, [b"x", b"bad"])
    assert "error" not in results[0] and results[1]["code"] == "bad_signature"
    assert (await in_thread(client.block))["height"] == 7
    assert (await in_thread(client.state, "kv", "a/b"))["key"] == "a/b"


async def test_refusals_become_client_errors(served: tuple[str, FakeNode]) -> None:
    url, _ = served
    with pytest.raises(ClientError) as err:
        await in_thread(Client(url).submit, b"bad")
    assert err.value.status == 400 and err.value.code == "bad_signature"
    with pytest.raises(ClientError) as err:
        await in_thread(Client(url, chain_id="nope").block)
    assert err.value.status == 404 and "unknown chain" in err.value.reason


async def test_wait_gives_up_after_its_timeout(served: tuple[str, FakeNode]) -> None:
    url, _ = served
    with pytest.raises(ClientError, match="not committed"):
        await in_thread(Client(url).wait, "00" * 32, 0.2)


def test_unreachable_node_is_a_client_error() -> None:
    with pytest.raises(ClientError, match="cannot reach"):
        Client("http://127.0.0.1:9", timeout_s=1).status()


@contextmanager
def answering(answer: bytes) -> Iterator[str]:
    """The URL of a server on 127.0.0.1 that sends ``answer`` to its first request."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(5)

        def answer_once() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

        thread = threading.Thread(target=answer_once, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
        thread.join(timeout=5)
        assert not thread.is_alive()


@pytest.mark.parametrize(
    "answer",
    [
        b"GET /v1/status HTTP/1.1\r\n\r\n",  # a socket connected to itself reads its request
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json!",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n\xff\xfe",
    ],
    ids=["not-http", "not-json", "not-utf8"],
)
def test_a_malformed_answer_is_a_client_error(answer: bytes) -> None:
    with answering(answer) as url, pytest.raises(ClientError, match="malformed answer"):
        Client(url, timeout_s=5).status()


def test_an_error_answer_that_is_not_a_json_object_keeps_its_status() -> None:
    body = b"[1, 2]"
    head = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\n\r\n" % len(body)
    with answering(head + body) as url, pytest.raises(ClientError) as caught:
        Client(url, timeout_s=5).status()
    assert caught.value.status == 503
