"""Four real validator processes on 127.0.0.1: commits, crashes, restarts, hostile input.

Each test starts its own network in a temporary directory and stops every
process it started; every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaincity.client import ClientError
from chaincity.proofs import BundleError, decode_bundle, encode_bundle, verify_bundle
from tests.integration.conftest import failed
from tests.integration.netproc import LocalNetwork, wait_for

COMMIT_TIMEOUT_S = 60.0


@pytest.fixture
def net(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LocalNetwork]:
    network = LocalNetwork(tmp_path / "net")
    try:
        network.start_all()
        yield network
    finally:
        if failed(request.node):  # what each node logged last, in the failure's report
            for i in range(network.size):
                print(f"--- node {i}: last lines of its log ---\n{network.log_tail(i, 40)}")
        network.stop_all()


def submit_kv(net: LocalNetwork, node: int, count: int, prefix: str) -> list[str]:
    signer = net.signer(node % 2)
    client = net.client(node)
    expiry = client.height() + 500
    raws = [
        signer.build("kv", "put", {"key": f"{prefix}{i}", "value": i}, expiry_height=expiry)
        for i in range(count)
    ]
    return [client.submit(raw) for raw in raws]


def committed_everywhere(net: LocalNetwork, ids: list[str], nodes: list[int]) -> bool:
    return all(net.client(n).tx(t)["status"] == "committed" for n in nodes for t in ids)


def result_at(net: LocalNetwork, node: int, height: int) -> dict[str, str]:
    result: dict[str, str] = net.client(node).block(height)["result"]
    return result


def test_transactions_from_any_node_commit_and_roots_agree(net: LocalNetwork) -> None:
    ids = [t for n in range(4) for t in submit_kv(net, n, 5, f"n{n}-")]
    wait_for(lambda: committed_everywhere(net, ids, [0, 1, 2, 3]), COMMIT_TIMEOUT_S, "commits")
    height = min(net.height(i) for i in range(4))
    results = [result_at(net, i, height) for i in range(4)]
    assert all(r == results[0] for r in results)
    values = {json.dumps(net.client(i).state("kv", "n2-3")["value"]) for i in range(4)}
    assert values == {"3"}


def test_kill_one_validator_commits_continue_and_it_catches_up(net: LocalNetwork) -> None:
    net.kill(3)
    ids = submit_kv(net, 0, 10, "a")
    wait_for(lambda: committed_everywhere(net, ids, [0, 1, 2]), COMMIT_TIMEOUT_S, "commits with 3")
    target = net.height(0)
    net.start(3)
    wait_for(lambda: net.is_up(3) and net.height(3) >= target, COMMIT_TIMEOUT_S, "catch-up")
    assert committed_everywhere(net, ids, [3])
    assert result_at(net, 3, target) == result_at(net, 0, target)


def test_kill_the_leader_mid_round_a_timeout_replaces_it(net: LocalNetwork) -> None:
    wait_for(lambda: net.height(0) >= 2, COMMIT_TIMEOUT_S, "first blocks")
    leader = net.chain_status(0)["leader"]
    net.kill(leader)
    survivor = (leader + 1) % 4
    before = net.chain_status(survivor)["round"]
    ids = submit_kv(net, survivor, 3, "after-leader-")
    live = [i for i in range(4) if i != leader]
    wait_for(lambda: committed_everywhere(net, ids, live), COMMIT_TIMEOUT_S, "commits")
    assert net.chain_status(survivor)["round"] > before


def test_kill_all_and_restart_keeps_every_committed_transaction(net: LocalNetwork) -> None:
    ids = submit_kv(net, 1, 10, "durable")
    wait_for(lambda: committed_everywhere(net, ids, [1]), COMMIT_TIMEOUT_S, "commits")
    for i in range(4):
        net.kill(i)
    net.start_all()
    for i in range(4):
        statuses = {net.client(i).tx(t)["status"] for t in ids}
        assert statuses <= {"committed", "unknown"}
    # Nodes that had not yet committed the last blocks catch up from the others.
    wait_for(lambda: committed_everywhere(net, ids, [0, 1, 2, 3]), COMMIT_TIMEOUT_S, "all")
    more = submit_kv(net, 2, 3, "after-restart")
    wait_for(lambda: committed_everywhere(net, more, [0, 1, 2, 3]), COMMIT_TIMEOUT_S, "new")
    # Every ledger re-verifies from scratch: hash chain, roots, certificate signatures.
    for i in range(4):
        net.kill(i)
        data = net.view.nodes[i].config_path.parent / "data"
        check = subprocess.run(
            [sys.executable, "-m", "chaincity", "ledger", "check", "--data", str(data)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert "checked against the validators" in check.stdout and "main: ok" in check.stdout


def _http(url: str, data: bytes | None = None, ctype: str = "application/json") -> int:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read())
        assert body["error"], body
        return int(exc.code)


def test_hostile_clients_and_peers_change_nothing(net: LocalNetwork) -> None:
    url = net.url(0)
    txs = f"{url}/v1/chains/main/txs"
    cases = [
        (txs, b"{not json"),
        (txs, json.dumps({"tx": "!!!"}).encode()),
        (txs, json.dumps({"tx": base64.b64encode(b"\x93junk").decode()}).encode()),
        (txs, json.dumps({"txs": [1, 2]}).encode()),
        (txs, b"x" * (17 * 1024 * 1024)),
        (f"{url}/v1/chains/nope/txs", json.dumps({"tx": "AA=="}).encode()),
    ]
    for target, body in cases:
        assert 400 <= _http(target, body) < 500
    for path in ["/v1/chains/main/blocks/-5", "/v1/chains/main/txs/zz", "/v1/chains/x/blocks/1"]:
        assert 400 <= _http(url + path) < 500
    # Garbage on the peer port: before TLS, and inside TLS with a real peer certificate.
    p2p = net.view.nodes[0].config.p2p
    with socket.create_connection((p2p.host, p2p.port), timeout=5) as raw:
        raw.sendall(os.urandom(4096))
    net.kill(1)  # borrow node 1's identity while it is down
    peer_dir = net.view.nodes[1].config_path.parent
    ctx = ssl.create_default_context(cafile=str(net.root / "tls-ca-bundle.pem"))
    ctx.load_cert_chain(peer_dir / "tls.crt", peer_dir / "tls.key")
    with (
        socket.create_connection((p2p.host, p2p.port), timeout=5) as sock,
        ctx.wrap_socket(sock, server_hostname=net.view.nodes[0].config.name) as tls,
    ):
        for _ in range(20):
            junk = os.urandom(64)
            tls.sendall(struct.pack(">I", len(junk)) + junk)
        tls.sendall(struct.pack(">I", 2**31))  # an absurd length prefix
    net.start(1)
    ids = submit_kv(net, 0, 3, "still-alive")
    wait_for(lambda: committed_everywhere(net, ids, [0, 1, 2, 3]), COMMIT_TIMEOUT_S, "commits")


def test_proof_bundle_verifies_offline_and_tampering_fails(net: LocalNetwork) -> None:
    digest = "5e" * 32
    client = net.client(2)
    signer = net.signer(1)
    raw = signer.build(
        "notary",
        "record",
        {"digest": digest, "metadata": {"title": "deed 7"}},
        expiry_height=client.height() + 500,
    )
    tx = client.wait(client.submit(raw), timeout_s=COMMIT_TIMEOUT_S)
    assert tx["status"] == "committed"

    def proven() -> bool:
        answer = net.client(0).state("notary", digest, proof=True)
        return bool(answer["proof"].get("state_height", -1) >= tx["height"])

    wait_for(proven, COMMIT_TIMEOUT_S, "a header attesting the record")
    answer = net.client(0).state("notary", digest, proof=True)
    record_file = net.root / "record.json"
    record_file.write_text(json.dumps(answer))
    genesis = net.root / "genesis.json"
    ok = subprocess.run(
        [sys.executable, "-m", "chaincity", "verify", str(record_file), "--genesis", str(genesis)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "VALID" in ok.stdout and "deed 7" in ok.stdout

    bundle = decode_bundle(base64.b64decode(answer["proof"]["bundle"]))
    from chaincity.genesis.model import load_genesis

    trusted = load_genesis(str(genesis)).validators
    assert verify_bundle(bundle, trusted).value == bundle.value
    forged_value = bundle.value.replace(b"deed 7", b"deed 8")  # type: ignore[union-attr]
    import msgspec

    for forged in (
        msgspec.structs.replace(bundle, value=forged_value),
        msgspec.structs.replace(bundle, value=None),
        msgspec.structs.replace(bundle, key=b"6f" * 32),
    ):
        with pytest.raises(BundleError):
            verify_bundle(forged, trusted)
    tampered = dict(answer)
    tampered["proof"] = {
        **answer["proof"],
        "bundle": base64.b64encode(
            encode_bundle(msgspec.structs.replace(bundle, value=forged_value))
        ).decode(),
    }
    record_file.write_text(json.dumps(tampered))
    bad = subprocess.run(
        [sys.executable, "-m", "chaincity", "verify", str(record_file), "--genesis", str(genesis)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "state proof" in bad.stderr


def test_client_errors_do_not_hide_unknown_transactions(net: LocalNetwork) -> None:
    assert net.client(0).tx("00" * 32)["status"] == "unknown"
    with pytest.raises(ClientError) as err:
        net.client(0).submit(b"\x00")
    assert err.value.status == 400
