"""Pre-signed load: many members, valid certificates, distinct transactions."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaincity.bench import workload
from chaincity.bench.network import init_options
from chaincity.codec import decode, decode_value
from chaincity.crypto import get_suite
from chaincity.genesis.network import create_network
from chaincity.types.identity import verify_member_cert
from chaincity.types.tx import Transaction, tx_id, verify_tx_signature

NOW_MS = 1_800_000_000_000


def test_presigned_txs_verify_and_come_from_many_members(tmp_path: Path) -> None:
    view = create_network(tmp_path / "net", init_options(2, "ed25519-sha256", 30000), NOW_MS, False)
    suite = get_suite("ed25519-sha256")
    signers = workload.make_signers(tmp_path / "net", view.genesis, 6, NOW_MS)
    raws = workload.presign(signers, workload.get_workload("notary"), 30, 500, "run1")
    txs = [decode(raw, Transaction) for raw in raws]
    ca_keys = {org.name: org.ca_public_key for org in view.genesis.orgs}
    for tx in txs:
        assert verify_tx_signature(suite, tx)
        verify_member_cert(suite, tx.body.sender, ca_keys, NOW_MS + 1000, set())
        assert tx.body.expiry_height == 500
        assert (tx.body.contract, tx.body.method) == ("notary", "record")
    assert len({tx.body.sender.body.public_key for tx in txs}) == 6
    assert {tx.body.sender.body.org for tx in txs} == {"org1", "org2"}
    assert len({tx.body.sender.body.serial for tx in txs if tx.body.sender.body.org == "org1"}) == 3
    assert len({tx_id(suite, tx.body) for tx in txs}) == 30
    digests = {decode_value(tx.body.args)["digest"] for tx in txs}
    assert len(digests) == 30


def test_kv_args_are_distinct_keys() -> None:
    kv = workload.get_workload("kv")
    a, b = workload.compute_args(kv, "t", 1), workload.compute_args(kv, "t", 2)
    assert a["key"] != b["key"] and isinstance(a["value"], bytes)
    with pytest.raises(ValueError):
        workload.get_workload("nope")


def test_presign_bounds() -> None:
    with pytest.raises(ValueError):
        workload.presign([], workload.get_workload("kv"), 1, 10, "t")
    with pytest.raises(ValueError):
        workload.presign([], workload.get_workload("kv"), 0, 10, "t")


def test_verify_rate_uses_the_clock_it_is_given(tmp_path: Path) -> None:
    view = create_network(tmp_path / "net", init_options(1, "ed25519-sha256", 30000), NOW_MS, False)
    signers = workload.make_signers(tmp_path / "net", view.genesis, 1, NOW_MS)
    raws = workload.presign(signers, workload.get_workload("kv"), 4, 10, "t")
    # Two rounds of 0.5 s: the first takes 0.5 s per pass, the second 0.25 s.
    ticks = iter([0.0, 0.5, 10.0, 10.25, 10.5])
    rate = workload.measure_verify_per_s(
        get_suite("ed25519-sha256"), raws, 1.0, lambda: next(ticks), rounds=2
    )
    assert rate == pytest.approx(8 / 0.5)  # the better round: 2 passes of 4 in 0.5 s
