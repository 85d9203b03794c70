"""The executor: admission rules, atomic per-transaction effects, metering, receipts."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from chaincity.codec import decode_value, encode, encode_value
from chaincity.contracts import builtin_registry
from chaincity.execution.context import Context, ContractError
from chaincity.execution.contract import Args, Contract, ContractRegistry, method
from chaincity.execution.executor import BlockExecutor, ExecutionParams
from chaincity.types.block import RECEIPT_FAILED, RECEIPT_OK
from chaincity.types.tx import Transaction as _Tx
from chaincity.types.tx import TxBody, sign_tx, tx_id
from tests.execution.conftest import DictView
from tests.support import BOB_KEY, SUITE, authorize
from tests.support import make_tx as tx

DIGEST = "ab" * 32


def executor(
    registry: ContractRegistry | None = None,
    committed: set[bytes] | None = None,
    params: ExecutionParams | None = None,
) -> BlockExecutor:
    done = committed or set()
    return BlockExecutor(
        suite=SUITE,
        chain_id="main",
        registry=registry or builtin_registry(),
        authorize=authorize,
        is_committed=done.__contains__,
        params=params,
    )


def test_kv_put_then_get_in_one_block(view: DictView) -> None:
    result = executor().execute_block(
        view,
        10,
        1_000,
        [tx("kv", "put", {"key": "a", "value": [1, "x"]}), tx("kv", "get", {"key": "a"}, nonce=2)],
    )
    assert [r.status for r in result.receipts] == [RECEIPT_OK, RECEIPT_OK]
    assert decode_value(result.receipts[1].result) == [1, "x"]
    assert result.receipts[0].events[0].name == "put"
    assert [r.index for r in result.receipts] == [0, 1]


def test_kv_put_many_writes_every_entry_or_none(view: DictView) -> None:
    from chaincity.contracts.kv import PUT_MANY_MAX

    items = {f"k{i:04d}": i for i in range(PUT_MANY_MAX)}
    good = tx("kv", "put_many", {"items": items})
    too_many = tx("kv", "put_many", {"items": {**items, "extra": 1}}, nonce=2)
    long_key = tx("kv", "put_many", {"items": {"a": 1, "k" * 129: 2}}, nonce=3)
    empty = tx("kv", "put_many", {"items": {}}, nonce=4)
    result = executor().execute_block(view, 3, 0, [good, too_many, long_key, empty])
    statuses = [r.status for r in result.receipts]
    assert statuses == [RECEIPT_OK, RECEIPT_FAILED, RECEIPT_FAILED, RECEIPT_FAILED]
    assert decode_value(result.receipts[0].result) == PUT_MANY_MAX
    assert decode_value(view.data[b"kv/k0999"]) == 999
    assert b"kv/a" not in view.data  # the failed call's first write was undone


def test_notary_records_once_and_second_attempt_fails_without_changes(view: DictView) -> None:
    first = tx("notary", "record", {"digest": DIGEST, "metadata": {"title": "deed"}})
    second = tx(
        "notary", "record", {"digest": DIGEST, "metadata": {"title": "forged"}}, key=BOB_KEY
    )
    result = executor().execute_block(view, 5, 777, [first, second])
    ok, failed = result.receipts
    assert ok.status == RECEIPT_OK and failed.status == RECEIPT_FAILED
    assert "already recorded" in failed.error
    stored = decode_value(view.data[b"notary/" + DIGEST.encode()])
    assert stored["metadata"] == {"title": "deed"}
    assert stored["height"] == 5 and stored["time_ms"] == 777 and stored["org"] == "bank"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({"digest": "xyz"}, "hex"),
        ({"digest": "ab" * 8}, "hex"),
        ({}, "missing argument"),
        ([DIGEST], "map"),
        ({"digest": 5}, "text"),
    ],
)
def test_notary_rejects_bad_arguments(view: DictView, args: Any, reason: str) -> None:
    (receipt,) = executor().execute_block(view, 1, 0, [tx("notary", "record", args)]).receipts
    assert receipt.status == RECEIPT_FAILED
    assert reason in receipt.error
    assert view.data == {}


class Faulty(Contract):
    name = "faulty"

    @method
    def write_then_fail(self, ctx: Context, args: Args) -> None:
        ctx.state.put("k", 1)
        raise ContractError("refused")

    @method
    def write_then_crash(self, ctx: Context, args: Args) -> None:
        ctx.state.put("k", 1)
        _ = {}["missing"]

    @method
    def loop(self, ctx: Context, args: Args) -> None:
        for i in range(10**6):
            ctx.state.put(f"k{i}", i)

    @method
    def ok(self, ctx: Context, args: Args) -> int:
        ctx.state.put("k", 2)
        return 2


def test_failed_transaction_reverts_only_its_own_writes(view: DictView) -> None:
    registry = ContractRegistry([Faulty()])
    blk = [
        tx("faulty", "ok", {}),
        tx("faulty", "write_then_fail", {}, nonce=2),
        tx("faulty", "write_then_crash", {}, nonce=3),
    ]
    receipts = executor(registry).execute_block(view, 1, 0, blk).receipts
    assert [r.status for r in receipts] == [RECEIPT_OK, RECEIPT_FAILED, RECEIPT_FAILED]
    assert receipts[1].error == "refused"
    # Interpreter messages never reach a receipt, only the exception's class.
    assert receipts[2].error == "contract raised KeyError"
    assert decode_value(view.data[b"faulty/k"]) == 2


def test_step_budget_stops_a_runaway_method(view: DictView) -> None:
    registry = ContractRegistry([Faulty()])
    params = ExecutionParams(step_budget=5_000)
    (receipt,) = (
        executor(registry, params=params)
        .execute_block(view, 1, 0, [tx("faulty", "loop", {})])
        .receipts
    )
    assert receipt.status == RECEIPT_FAILED
    assert "out of steps" in receipt.error
    assert receipt.steps == 5_000
    assert view.data == {}


def test_unknown_contract_and_method_fail_with_reason(view: DictView) -> None:
    receipts = (
        executor()
        .execute_block(view, 1, 0, [tx("nope", "x", {}), tx("kv", "nope", {}, nonce=2)])
        .receipts
    )
    assert "no contract 'nope'" in receipts[0].error
    assert "no method 'nope'" in receipts[1].error


def test_inadmissible_transactions_are_skipped_without_receipts(view: DictView) -> None:
    good = tx("kv", "put", {"key": "a", "value": 1})
    raw = msgspec.msgpack.decode(good)
    raw[1] = b"\x00" * 64  # forged signature
    forged = msgspec.msgpack.encode(raw)
    committed_before = tx("kv", "put", {"key": "b", "value": 1}, nonce=9)
    old_id = tx_id(SUITE, msgspec.msgpack.decode(committed_before, type=_Tx).body)
    blk = [
        b"\x93garbage",
        forged,
        tx("kv", "put", {"key": "c", "value": 1}, chain="energy"),
        tx("kv", "put", {"key": "d", "value": 1}, expiry=9),
        tx("kv", "put", {"key": "e", "value": 1}, expiry=10 + 5_000),
        committed_before,
        good,
        good,
    ]
    result = executor(committed={old_id}).execute_block(view, 10, 0, blk)
    assert len(result.receipts) == 1
    reasons = [reason.split(":")[0] for _, reason in result.skipped]
    assert reasons == [
        "malformed transaction",
        "bad signature",
        "wrong chain",
        "expired",
        "expiry beyond the window",
        "duplicate",
        "duplicate",
    ]
    assert set(view.data) == {b"kv/a"}
    # Every transaction's id, in block order: None only where it does not decode.
    ids = [tx_id(SUITE, msgspec.msgpack.decode(raw, type=_Tx).body) for raw in blk[1:]]
    assert result.tx_ids == [None, *ids]
    assert result.tx_ids[-2] == result.tx_ids[-1] == result.receipts[0].tx_id


def test_unauthorized_sender_is_skipped(view: DictView) -> None:
    from chaincity.types.identity import CertBody, issue_cert

    rogue_ca = bytes(range(100, 132))
    cert = issue_cert(
        SUITE,
        rogue_ca,
        CertBody("main", "mallory", "evil", ("member",), SUITE.public_key(BOB_KEY), 0, 10**13, 1),
    )
    body = TxBody("main", cert, 1, "kv", "put", encode_value({"key": "a", "value": 1}), 50)
    result = executor().execute_block(view, 1, 0, [encode(sign_tx(SUITE, BOB_KEY, body))])
    assert result.receipts == []
    assert "not authorized" in result.skipped[0][1]


def test_same_block_gives_same_receipts_root_on_a_fresh_node() -> None:
    blk = [tx("kv", "put", {"key": f"k{i}", "value": i}, nonce=i) for i in range(20)]
    a = executor().execute_block(DictView(), 3, 9, blk)
    b = executor().execute_block(DictView(), 3, 9, blk)
    assert a.receipts_root == b.receipts_root
    c = executor().execute_block(DictView(), 3, 9, list(reversed(blk)))
    assert c.receipts_root != a.receipts_root


def test_uses_the_decoded_form_it_is_given_and_decodes_the_rest(view: DictView) -> None:
    known = tx("kv", "put", {"key": "a", "value": 1})
    other = tx("kv", "put", {"key": "b", "value": 2}, nonce=2)
    decoded_tx = msgspec.msgpack.decode(known, type=_Tx)
    asked: list[bytes] = []

    def decoded(raw: bytes) -> tuple[bytes, _Tx] | None:
        asked.append(raw)
        return (tx_id(SUITE, decoded_tx.body), decoded_tx) if raw == known else None

    ex = BlockExecutor(
        suite=SUITE,
        chain_id="main",
        registry=builtin_registry(),
        authorize=authorize,
        is_committed=lambda _t: False,
        decoded=decoded,
    )
    result = ex.execute_block(view, 10, 1_000, [known, other, b"\x01junk"])
    assert asked == [known, other, b"\x01junk"]
    assert [r.status for r in result.receipts] == [RECEIPT_OK, RECEIPT_OK]
    assert result.receipts[1].tx_id == tx_id(SUITE, msgspec.msgpack.decode(other, type=_Tx).body)
    assert len(result.skipped) == 1 and result.skipped[0][1].startswith("malformed")
