"""Filling the state before a run: every key written once, failures reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chaincity.bench import preload, workload
from chaincity.bench.network import init_options
from chaincity.client import ClientError
from chaincity.codec import decode, decode_value
from chaincity.contracts.kv import PUT_MANY_MAX
from chaincity.genesis.network import create_network
from chaincity.types.tx import Transaction

NOW_MS = 1_800_000_000_000


def test_preload_transactions_write_each_key_once(tmp_path: Path) -> None:
    view = create_network(tmp_path / "net", init_options(2, "ed25519-sha256", 31000), NOW_MS, False)
    signers = workload.make_signers(tmp_path / "net", view.genesis, 3, NOW_MS)
    raws = preload.build_preload(signers, 2 * PUT_MANY_MAX + 5, 900, "t")
    txs = [decode(raw, Transaction) for raw in raws]
    assert [(t.body.contract, t.body.method) for t in txs] == [("kv", "put_many")] * 3
    keys = [k for t in txs for k in decode_value(t.body.args)["items"]]
    assert len(keys) == len(set(keys)) == 2 * PUT_MANY_MAX + 5
    assert all(t.body.expiry_height == 900 for t in txs)
    with pytest.raises(ValueError):
        preload.build_preload(signers, preload.STATE_KEYS_MAX + 1, 900, "t")


class FakeClient:
    def __init__(self, refuse_first: int = 0, final: str = "committed") -> None:
        self.refuse_first = refuse_first
        self.final = final
        self.submitted: list[bytes] = []
        self.waited: list[str] = []

    def submit(self, raw: bytes) -> str:
        if self.refuse_first:
            self.refuse_first -= 1
            raise ClientError(503, "mempool is full; retry later")
        self.submitted.append(raw)
        return f"id{len(self.submitted)}"

    def wait(self, tx_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
        self.waited.append(tx_id)
        return {"id": tx_id, "status": self.final}


def test_preload_retries_a_full_pool_and_waits_for_every_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(preload, "RETRY_S", 0.0)
    client = FakeClient(refuse_first=2)
    raws = [bytes([i]) for i in range(40)]
    preload.preload_state([client], raws)  # type: ignore[list-item]
    assert client.submitted == raws
    assert sorted(client.waited) == sorted(f"id{i + 1}" for i in range(40))


@pytest.mark.parametrize(
    ("client", "reason"),
    [(FakeClient(final="failed"), "failed"), (FakeClient(final="rejected"), "rejected")],
)
def test_preload_stops_on_a_transaction_that_does_not_commit(
    client: FakeClient, reason: str
) -> None:
    with pytest.raises(preload.PreloadError, match=reason):
        preload.preload_state([client], [b"a", b"b"])  # type: ignore[list-item]


def test_preload_stops_on_a_bad_request() -> None:
    class Refusing(FakeClient):
        def submit(self, raw: bytes) -> str:
            raise ClientError(400, "malformed transaction")

    with pytest.raises(preload.PreloadError, match="malformed"):
        preload.preload_state([Refusing()], [b"a"])  # type: ignore[list-item]
