"""Execute a committed block's transactions, in order, deterministically.

For each transaction (``process_tx``):

1. It must decode, name this chain, not be committed before (nor earlier in
   this block), carry a valid signature, be within its expiry window, and come
   from a sender whose member certificate is valid at the block's time. A
   transaction failing any of these is *skipped*: it gets no receipt, changes
   nothing, and its id stays free. (A receipt for an unauthorized transaction
   would let anyone burn another member's transaction id.)
2. Otherwise it runs against its contract's namespace under a step budget. Its
   writes are kept only if it succeeds; a failure reverts them and records a
   failed receipt with the contract's own message.

The result's receipts root commits to every receipt in order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chaincity.codec import CodecError, Tag, decode, decode_value, encode, encode_value
from chaincity.crypto import CryptoSuite
from chaincity.execution.context import STEP_CALL, Context, ContractError, KeyValueStore, Meter
from chaincity.execution.context import Sender as Sender
from chaincity.execution.contract import Args, ContractRegistry
from chaincity.execution.merkle import merkle_root
from chaincity.types.block import RECEIPT_FAILED, RECEIPT_OK, Receipt
from chaincity.types.identity import MemberCert
from chaincity.types.primitives import ERROR_SIZE_MAX, RETURN_SIZE_MAX, TX_SIZE_MAX
from chaincity.types.tx import Transaction, tx_id, verify_tx_signature

STEP_BUDGET_DEFAULT = 200_000
EXPIRY_WINDOW_DEFAULT = 1_000


class StateView(Protocol):
    """A copy-on-write view of the state that a block executes on."""

    def namespace(self, contract: str) -> KeyValueStore: ...

    def checkpoint(self) -> Any: ...

    def revert(self, checkpoint: Any) -> None: ...


class Authorizer(Protocol):
    """Checks a sender's member certificate at a given time; raises with a reason."""

    def __call__(self, cert: MemberCert, now_ms: int) -> Sender: ...


@dataclass(frozen=True, slots=True)
class ExecutionParams:
    step_budget: int = STEP_BUDGET_DEFAULT
    expiry_window: int = EXPIRY_WINDOW_DEFAULT  # heights a transaction may live


@dataclass(slots=True)
class BlockResult:
    height: int
    receipts: list[Receipt] = field(default_factory=list)
    skipped: list[tuple[bytes, str]] = field(default_factory=list)  # (tx id or b"", reason)
    receipts_root: bytes = b""
    # The id of every transaction of the block, in block order (None: it does not
    # decode), so that the ids are worked out once per block, here.
    tx_ids: list[bytes | None] = field(default_factory=list)

    @property
    def committed_tx_ids(self) -> list[bytes]:
        return [r.tx_id for r in self.receipts]


class SkipTx(Exception):
    """The transaction is not admissible; it is skipped without a receipt."""


class BlockExecutor:
    """Runs blocks; holds no state between blocks beyond its configuration."""

    def __init__(
        self,
        *,
        suite: CryptoSuite,
        chain_id: str,
        registry: ContractRegistry,
        authorize: Authorizer,
        is_committed: Callable[[bytes], bool],
        params: ExecutionParams | None = None,
        verify_signature: Callable[[bytes, Transaction], bool] | None = None,
        decoded: Callable[[bytes], tuple[bytes, Transaction] | None] | None = None,
    ) -> None:
        self._suite = suite
        self._chain_id = chain_id
        self._registry = registry
        self._authorize = authorize
        self._is_committed = is_committed
        self._params = params or ExecutionParams()
        self._verify = verify_signature or (lambda _id, tx: verify_tx_signature(suite, tx))
        # (id, transaction) for bytes this node decoded before (its mempool's), so a
        # block of pooled transactions is not decoded and hashed a second time.
        self._decoded = decoded or (lambda _raw: None)

    def execute_block(
        self, view: StateView, height: int, block_time_ms: int, txs: Sequence[bytes]
    ) -> BlockResult:
        result = BlockResult(height)
        seen: set[bytes] = set()
        for raw in txs:
            try:
                tx, tid, sender = self._admit(raw, height, block_time_ms, seen)
            except SkipTx as exc:
                skipped_id = exc.args[1] if len(exc.args) > 1 else b""
                result.skipped.append((skipped_id, exc.args[0]))
                result.tx_ids.append(skipped_id or None)
                continue
            result.tx_ids.append(tid)
            seen.add(tid)
            receipt = self.process_tx(
                view, tx, tid, sender, height, block_time_ms, len(result.receipts)
            )
            result.receipts.append(receipt)
        result.receipts_root = receipts_root(self._suite, result.receipts)
        return result

    def _admit(
        self, raw: bytes, height: int, block_time_ms: int, seen: set[bytes]
    ) -> tuple[Transaction, bytes, Sender]:
        tid, tx = self._decoded(raw) or self._decode(raw)
        body = tx.body
        if body.chain_id != self._chain_id:
            raise SkipTx("wrong chain", tid)
        if tid in seen or self._is_committed(tid):
            raise SkipTx("duplicate", tid)
        if height > body.expiry_height:
            raise SkipTx("expired", tid)
        if body.expiry_height > height + self._params.expiry_window:
            raise SkipTx("expiry beyond the window", tid)
        if not self._verify(tid, tx):
            raise SkipTx("bad signature", tid)
        try:
            sender = self._authorize(body.sender, block_time_ms)
        except Exception as exc:  # the authorizer's reason, whatever its class
            raise SkipTx(f"sender not authorized: {exc}", tid) from None
        return tx, tid, sender

    def _decode(self, raw: bytes) -> tuple[bytes, Transaction]:
        try:
            tx = decode(raw, Transaction, size_max=TX_SIZE_MAX)
        except CodecError as exc:
            raise SkipTx(f"malformed transaction: {exc}") from None
        return tx_id(self._suite, tx.body), tx

    def process_tx(
        self,
        view: StateView,
        tx: Transaction,
        tid: bytes,
        sender: Sender,
        height: int,
        block_time_ms: int,
        index: int,
    ) -> Receipt:
        body = tx.body
        meter = Meter(self._params.step_budget)
        checkpoint = view.checkpoint()
        ctx: Context | None = None
        try:
            contract = self._registry.get(body.contract)
            if contract is None:
                raise ContractError(f"no contract {body.contract!r}")
            meter.charge(STEP_CALL)
            try:
                args = Args(decode_value(body.args))
            except CodecError as exc:
                raise ContractError(f"arguments are not a canonical value: {exc}") from None
            ctx = Context(
                contract=contract.name,
                sender=sender,
                height=height,
                block_time_ms=block_time_ms,
                tx_id=tid,
                store=view.namespace(contract.name),
                meter=meter,
            )
            value = contract.call(body.method, ctx, args)
            result = _encode_result(value)
        except ContractError as exc:
            view.revert(checkpoint)
            return _failed(tid, height, index, str(exc), meter.used)
        except Exception as exc:  # a contract bug: record its class only, never its text
            view.revert(checkpoint)
            return _failed(tid, height, index, f"contract raised {type(exc).__name__}", meter.used)
        return Receipt(tid, height, index, RECEIPT_OK, "", result, meter.used, ctx.events)


def _encode_result(value: Any) -> bytes:
    try:
        raw = encode_value(value)
    except CodecError as exc:
        raise ContractError(f"result not encodable: {exc}") from None
    if len(raw) > RETURN_SIZE_MAX:
        raise ContractError(f"result larger than {RETURN_SIZE_MAX} bytes")
    return raw


def _failed(tid: bytes, height: int, index: int, error: str, steps: int) -> Receipt:
    error = error.encode()[:ERROR_SIZE_MAX].decode(errors="ignore")
    return Receipt(tid, height, index, RECEIPT_FAILED, error, b"", steps, ())


def receipts_root(suite: CryptoSuite, receipts: Sequence[Receipt]) -> bytes:
    return merkle_root(suite, Tag.RECEIPTS, [encode(r) for r in receipts])
