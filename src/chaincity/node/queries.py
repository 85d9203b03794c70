"""The API's read-only view of one chain: transaction status, blocks, state, status.

``ChainQueries`` is mixed into ``ChainRuntime``: it answers from the chain's
store, mempool and consensus core and changes nothing but its small caches.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from chaincity.api.render import encoded_value_to_json, header_to_json, receipt_to_json
from chaincity.codec import CodecError, decode, encode
from chaincity.consensus.core import ConsensusCore, get_leader
from chaincity.crypto import CryptoSuite
from chaincity.mempool import Mempool
from chaincity.node.store import ChainStore
from chaincity.types.block import Block, block_hash
from chaincity.types.primitives import TX_SIZE_MAX
from chaincity.types.tx import Transaction, tx_id

if TYPE_CHECKING:
    from chaincity.node.chain import ChainDeps

BLOCK_SUMMARIES_MAX = 16

# A committed block as the API shows it: hash, header, transaction ids (hex).
BlockSummary = tuple[str, dict[str, Any], tuple[str | None, ...]]


class ChainQueries:
    """What the API reads of a chain (the runtime provides the attributes below)."""

    chain_id: str
    deps: ChainDeps
    suite: CryptoSuite
    store: ChainStore
    mempool: Mempool
    core: ConsensusCore | None
    halted: str | None
    _skipped: OrderedDict[bytes, str]  # transaction id -> why it was not committed
    _summaries: OrderedDict[int, BlockSummary]
    _commit_event: asyncio.Event  # set, then replaced, at every committed block

    def tip_height(self) -> int:
        return self.store.tip_height()

    async def wait_commit(self, timeout_s: float) -> None:
        """Return when the next block commits, or after ``timeout_s``."""
        event = self._commit_event  # taken before any wait: no commit slips between
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout_s)

    def _announce_commit(self) -> None:
        event, self._commit_event = self._commit_event, asyncio.Event()
        event.set()

    def tx_status(self, tid: bytes) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": tid.hex()}
        receipt = self.store.receipt(tid)
        if receipt is not None:
            doc.update(
                status="committed" if receipt.status == 0 else "failed",
                height=receipt.height,
                index=receipt.index,
                receipt=receipt_to_json(receipt),
            )
        elif tid in self.mempool:
            doc["status"] = "pending"
        elif tid in self._skipped:
            doc.update(status="rejected", reason=self._skipped[tid])
        else:
            doc["status"] = "unknown"
        return doc

    def block(self, height: int | None) -> dict[str, Any] | None:
        h = self.store.tip_height() if height is None else height
        summary = self._block_summary(h)
        if summary is None:
            return None
        cert = self.store.commit_cert(h)
        result = self.store.exec_result(h)
        return {
            "hash": summary[0],
            "result": None
            if result is None
            else {
                "state_root": result.state_root.hex(),
                "receipts_root": result.receipts_root.hex(),
            },
            "header": dict(summary[1]),
            "tx_ids": list(summary[2]),
            "commit_cert": None if cert is None else encode(cert).hex(),
        }

    def _block_summary(self, height: int) -> BlockSummary | None:
        """Hash, header and transaction ids of a committed block, remembered for the
        latest few heights: a client polling the tip would otherwise make the node
        decode and hash every transaction of the block on each poll."""
        summary = self._summaries.get(height)
        if summary is not None:
            return summary
        block = self.store.block(height)
        if block is None:
            return None
        ids = tuple(_tx_id_or_none(self.suite, raw) for raw in block.txs)
        return self._remember_summary(block, ids)

    def _remember_summary(self, block: Block, ids: tuple[str | None, ...]) -> BlockSummary:
        """Keep the summary of ``block``, whose transaction ids are ``ids`` (the node
        calls this at every commit with the ids its execution worked out)."""
        summary = (block_hash(self.suite, block.header).hex(), header_to_json(block.header), ids)
        self._summaries[block.header.height] = summary
        self._summaries.move_to_end(block.header.height)
        if len(self._summaries) > BLOCK_SUMMARIES_MAX:
            self._summaries.popitem(last=False)
        return summary

    def state(self, contract: str, key: bytes, with_proof: bool) -> dict[str, Any]:
        height = self.store.tip_height()
        raw = self.store.get_state(contract, key, height)
        doc: dict[str, Any] = {
            "contract": contract,
            "key": key.decode(errors="replace"),
            "height": height,
            "found": raw is not None,
            "value": None if raw is None else encoded_value_to_json(raw),
        }
        if with_proof:
            from chaincity.node.proofs import build_bundle

            doc["proof"] = build_bundle(self, contract, key)
        return doc

    def status(self) -> dict[str, Any]:
        core = self.core
        return {
            "chain_id": self.chain_id,
            "height": self.store.tip_height(),
            "round": core.round if core else 0,
            "leader": get_leader(core.vset, core.round) if core else None,
            "epoch": core.vset.epoch if core else 0,
            "validators": [v.name for v in self.deps.genesis.validators.validators],
            "mempool": len(self.mempool),
            "halted": self.halted,
            "consensus": dict(sorted(core.stats.items())) if core else {},
        }


def _tx_id_or_none(suite: CryptoSuite, raw: bytes) -> str | None:
    """The id of a block's transaction as execution finds it (None: not a transaction)."""
    try:
        return tx_id(suite, decode(raw, Transaction, size_max=TX_SIZE_MAX).body).hex()
    except CodecError:
        return None
