"""Signatures checked off the event loop: late results, races with commits, and a
real runtime behind the HTTP API with worker threads or worker processes."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from chaincity.api.server import Api
from chaincity.codec import encode
from chaincity.crypto import CryptoSuite, get_suite
from chaincity.genesis import ConfigError
from chaincity.genesis.node_config import (
    Listen,
    NodeConfig,
    TlsFiles,
    dump_node_config,
    parse_node_config,
)
from chaincity.mempool import ProcessChecker, SignatureJob, ThreadedChecker
from chaincity.node.chain import ChainDeps, ChainRuntime
from chaincity.node.ledger_store import LedgerStore, open_chain_store
from chaincity.node.metrics import Metrics
from chaincity.node.node import verify_threads
from chaincity.node.wire import Kind, TxBatch
from tests.node.harness import DeferredChecker, SimNet, make_genesis, make_network, validator_key
from tests.support import make_tx

WAIT_S = 60  # bounds every wait; no test asserts on how long anything took


def start_all(net: SimNet) -> None:
    for node in net.nodes:
        node.start()


def txs(count: int, tag: str = "k") -> list[bytes]:
    return [
        make_tx("kv", "put", {"key": f"{tag}{i}", "value": i}, nonce=i, expiry=500)
        for i in range(count)
    ]


def test_validators_whose_checks_report_late_commit_and_agree() -> None:
    net, stores = make_network(4, lambda n: DeferredChecker(n, delay_ms=40))
    start_all(net)
    outcomes = net.nodes[1].submit_now(txs(10)) + net.nodes[2].submit_now(txs(10, "j"))
    ids = [o.tx_id for o in outcomes]
    assert all(o.error is None for o in outcomes)
    assert net.run_until(lambda: all(all(s.is_committed(t) for t in ids) for s in stores))
    tip = min(s.tip_height() for s in stores)
    assert len({s.exec_result(tip).state_root for s in stores}) == 1  # type: ignore[union-attr]
    assert all(len(node.mempool) == 0 for node in net.nodes)
    # The gossiped batches went through the checker, not inline.
    assert all(node.deps.signatures.batches > 0 for node in net.nodes[:1] + net.nodes[3:])  # type: ignore[union-attr]


def test_transaction_committed_while_its_gossip_is_checked_is_not_pooled_again() -> None:
    net, stores = make_network(4, lambda n: DeferredChecker(n, delay_ms=30_000))
    start_all(net)
    (out,) = net.nodes[0].submit_now(txs(1))
    tid = out.tx_id
    # Node 0 proposes it when it leads; the others' checks of its gossip are
    # still out when the block commits.
    assert net.run_until(lambda: all(s.is_committed(tid) for s in stores), 20_000)
    assert all(node.mempool.stats["committed"] == 0 for node in net.nodes)
    assert net.run_until(
        lambda: all(node.mempool.stats["committed"] == 1 for node in net.nodes[1:]), 60_000
    )
    assert all(len(node.mempool) == 0 for node in net.nodes)
    assert all(node.tx_status(tid)["status"] == "committed" for node in net.nodes)


def test_a_stopped_runtime_drops_checks_that_report_after_it_stopped() -> None:
    net, _ = make_network(2, lambda n: DeferredChecker(n, delay_ms=500))
    start_all(net)
    node = net.nodes[1]
    node.on_message(0, Kind.TXS, encode(TxBatch(tuple(txs(3)))))
    checker = node.deps.signatures
    assert isinstance(checker, DeferredChecker)
    assert net.run_until(lambda: checker.batches == 1, 100)  # its turn in the queue came
    node.stop()
    net.run_until(lambda: False, limit_ms=2_000)
    assert checker.batches == 1
    assert len(node.mempool) == 0 and node.mempool.stats["accepted"] == 0


class BusyChecker:
    """A checker with no room: every batch comes back to be checked inline."""

    def __init__(self) -> None:
        self.asked = 0

    def start(
        self, suite: CryptoSuite, jobs: Sequence[SignatureJob], done: Callable[[list[bool]], None]
    ) -> bool:
        self.asked += 1
        return False


def test_a_busy_checker_means_checking_inline() -> None:
    busy = BusyChecker()
    net, stores = make_network(2, lambda n: busy)
    start_all(net)
    (out,) = net.nodes[0].submit_now(txs(1))
    assert net.run_until(lambda: all(s.is_committed(out.tx_id) for s in stores))
    # The gossip reached node 1, whose checker said no: checked inline, admitted.
    assert busy.asked == 1 and net.nodes[1].mempool.stats["accepted"] == 1
    inline = net.nodes[1].deps.metrics.counter_value(
        "chaincity_signature_checks_total", chain="main", where="inline"
    )
    assert inline == 1


# ------------------------------------------------------------ real runtime, real threads


class OneChainNode:
    """The NodeService the API needs, around one runtime."""

    def __init__(self, runtime: ChainRuntime) -> None:
        self.runtime = runtime

    def chain(self, chain_id: str) -> ChainRuntime | None:
        return self.runtime if chain_id == self.runtime.chain_id else None

    def status(self) -> dict[str, Any]:
        return {"chains": [self.runtime.status()]}

    def metrics_text(self) -> str:
        return self.runtime.deps.metrics.render()


Running = tuple[TestClient[Any, Any], ChainRuntime, LedgerStore]


@pytest.fixture(params=["threads", "processes"])
async def running(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Running]:
    loop = asyncio.get_running_loop()
    genesis = make_genesis(1)
    suite = get_suite("ed25519-sha256")
    store = open_chain_store(tmp_path / "node", "main", suite, genesis)
    checker: ThreadedChecker | ProcessChecker
    if request.param == "threads":
        checker = ThreadedChecker(2, loop.call_soon_threadsafe, chunk_jobs=64)
    else:
        checker = ProcessChecker(2, loop.call_soon_threadsafe, chunk_jobs=64)
    deps = ChainDeps(
        genesis=genesis,
        suite=suite,
        private_key=validator_key(0),
        store=store,
        outbox=_NoPeers(),
        schedule=lambda delay_s, fn: loop.call_later(delay_s, fn),
        now_ms=lambda: time.time_ns() // 1_000_000,
        metrics=Metrics(),
        signatures=checker,
    )
    runtime = ChainRuntime("main", deps)
    runtime.start()
    try:
        async with TestClient(TestServer(Api(OneChainNode(runtime)).app())) as client:
            yield client, runtime, store
    finally:
        runtime.stop()
        checker.close()
        store.close()


class _NoPeers:
    def send(self, index: int, kind: Kind, payload: bytes) -> None:
        pass

    def broadcast(self, kind: Kind, payload: bytes) -> None:
        pass


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


async def wait_committed(store: LedgerStore, ids: list[bytes]) -> bool:
    for _ in range(WAIT_S * 100):
        if all(store.is_committed(t) for t in ids):
            return True
        await asyncio.sleep(0.01)
    return False


def forged(raw: bytes) -> bytes:
    fields = msgspec.msgpack.decode(raw)
    fields[1] = bytes(64)
    return msgspec.msgpack.encode(fields)


async def test_api_submits_checked_in_workers_commit(running: Running) -> None:
    client, runtime, store = running
    raws = txs(300)
    batch = [*raws[:150], forged(txs(1, "x")[0]), raws[0], *raws[150:]]
    resp = await client.post("/v1/chains/main/txs", json={"txs": [b64(r) for r in batch]})
    assert resp.status == 202
    doc = await resp.json()
    assert doc["accepted"] == 300
    codes = [r.get("code") for r in doc["results"]]
    assert codes[150:152] == ["bad_signature", "duplicate"]
    ids = [bytes.fromhex(r["id"]) for i, r in enumerate(doc["results"]) if i not in (150, 151)]
    assert await wait_committed(store, ids)
    off_loop = runtime.deps.metrics.counter_value(
        "chaincity_signature_checks_total", chain="main", where="workers"
    )
    assert off_loop == 301  # one check per distinct transaction, all in the workers
    resp = await client.get(f"/v1/chains/main/txs/{ids[-1].hex()}")
    assert (await resp.json())["status"] == "committed"


async def test_the_same_transaction_posted_twice_at_once_is_admitted_once(
    running: Running,
) -> None:
    client, runtime, store = running
    raws = txs(200)
    body = {"txs": [b64(r) for r in raws]}
    first, second = await asyncio.gather(
        client.post("/v1/chains/main/txs", json=body),
        client.post("/v1/chains/main/txs", json=body),
    )
    docs = [await first.json(), await second.json()]
    # Each batch is admitted in one go on the loop: one gets all, the other none.
    assert sorted(d["accepted"] for d in docs) == [0, 200]
    codes = [r.get("code") for d in docs for r in d["results"]]
    # The other copy finds it pooled, or already committed by a quick block.
    assert codes.count(None) == 200
    assert codes.count("duplicate") + codes.count("committed") == 200
    assert runtime.mempool.stats["accepted"] == 200
    ids = [bytes.fromhex(r["id"]) for r in docs[0]["results"]]
    assert await wait_committed(store, ids)


def config_with(threads: int | str) -> NodeConfig:
    return NodeConfig(
        name="n1",
        org="org1",
        p2p=Listen("127.0.0.1", 7700),
        api=Listen("127.0.0.1", 8700),
        tls=TlsFiles(),
        verify_threads=threads,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [("", "auto"), ("verify_threads = 4", 4), ('verify_threads = "auto"', "auto")],
)
def test_verify_threads_is_read_from_node_toml(line: str, expected: int | str) -> None:
    text = dump_node_config(config_with("auto")).replace(b'verify_threads = "auto"', line.encode())
    assert parse_node_config(text, "node.toml").verify_threads == expected


@pytest.mark.parametrize("value", ["-1", "257", '"many"', "1.5", "true"])
def test_bad_verify_threads_is_refused_naming_the_file(value: str) -> None:
    text = dump_node_config(config_with("auto")).replace(b'"auto"', value.encode())
    with pytest.raises(ConfigError, match=r"^nodes/n1/node.toml: .*verify_threads"):
        parse_node_config(text, "nodes/n1/node.toml")


def test_verify_threads_option() -> None:
    assert verify_threads(config_with(0)) == 0
    assert verify_threads(config_with(3)) == 3
    assert verify_threads(config_with("auto")) >= 1


def test_verify_processes_is_read_from_node_toml() -> None:
    text = dump_node_config(config_with("auto"))
    assert b"verify_processes = 0" in text
    assert parse_node_config(text, "node.toml").verify_processes == 0
    changed = text.replace(b"verify_processes = 0", b"verify_processes = 3")
    assert parse_node_config(changed, "node.toml").verify_processes == 3
    for bad in (b"-1", b"65", b'"auto"'):
        wrong = text.replace(b"verify_processes = 0", b"verify_processes = " + bad)
        with pytest.raises(ConfigError, match=r"^node.toml: .*verify_processes"):
            parse_node_config(wrong, "node.toml")


def test_batches_wait_in_a_queue_served_one_per_turn_of_the_loop() -> None:
    net, _stores = make_network(4)
    start_all(net)
    node = net.nodes[1]
    frames = [txs(5, "q1-"), txs(7, "q2-"), txs(9, "q3-")]
    for batch in frames:
        node.on_message(0, Kind.TXS, encode(TxBatch(tuple(batch))))
    # Nothing is admitted while the frames are read: each waits for its turn.
    assert len(node.mempool) == 0
    sizes: list[int] = []
    for _ in frames:
        assert net.run_until(lambda: len(node.mempool) > sum(sizes), 100)
        sizes.append(len(node.mempool) - sum(sizes))
    assert sizes == [5, 7, 9]  # one batch per turn, in arrival order


def test_past_the_queue_bound_a_batch_is_admitted_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chaincity.node import admission

    net, _stores = make_network(4)
    start_all(net)
    node = net.nodes[1]
    monkeypatch.setattr(admission, "ADMISSION_QUEUE_BYTES_MAX", 1)
    node.on_message(0, Kind.TXS, encode(TxBatch(tuple(txs(4, "now-")))))
    assert len(node.mempool) == 4  # admitted while the frame was read: the back-pressure
