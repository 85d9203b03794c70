"""The chain store of a node: the LMDB ledger and its authenticated state."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from pathlib import Path
from typing import Any

from chaincity.codec import decode, encode
from chaincity.crypto import CryptoSuite
from chaincity.execution.executor import StateView, receipts_root
from chaincity.genesis.model import Genesis
from chaincity.ledger.ledger import Ledger, open_store, pending_key
from chaincity.state import LmdbStore, Overlay, StateVersionError, encode_proof, namespaced_key
from chaincity.types.block import Block, BlockHeader, Receipt, block_hash
from chaincity.types.consensus import ExecResult, Proposal, QuorumCert, SafetyData

RESULTS_CACHED_MAX = 1024
HEADERS_CACHED_MAX = 1024


class LedgerStore:
    """Adapts the ledger and state packages to what a chain runtime needs."""

    def __init__(self, ledger: Ledger, suite: CryptoSuite, kv: LmdbStore) -> None:
        self.ledger = ledger
        self._kv = kv
        self._suite = suite
        self._results: OrderedDict[int, ExecResult] = OrderedDict()
        self._headers: OrderedDict[int, BlockHeader] = OrderedDict()

    def close(self) -> None:
        self.ledger.state.close()  # its read snapshot first, then the store under it
        self._kv.close()

    def tip_height(self) -> int:
        h = self.ledger.height
        return -1 if h is None else h

    def block(self, height: int) -> Block | None:
        return None if height < 0 else self.ledger.get_block(height)

    def header(self, height: int) -> BlockHeader | None:
        header = self._headers.get(height)
        if header is None:
            block = self.block(height)
            if block is None:
                return None
            header = block.header
            _remember(self._headers, height, header, HEADERS_CACHED_MAX)
        return header

    def commit_cert(self, height: int) -> QuorumCert | None:
        raw = self.ledger.get_commit_cert(height)
        return None if raw is None else decode(raw, QuorumCert)

    def exec_result(self, height: int) -> ExecResult | None:
        result = self._results.get(height)
        if result is not None:
            return result
        if not 0 <= height <= self.tip_height():
            return None
        try:
            root = self.ledger.state.root(height)
        except StateVersionError:
            return None
        result = ExecResult(
            height, root, receipts_root(self._suite, self.ledger.get_receipts(height))
        )
        _remember(self._results, height, result, RESULTS_CACHED_MAX)
        return result

    def load_safety(self) -> SafetyData | None:
        raw = self.ledger.get_safety_data()
        return None if raw is None else decode(raw, SafetyData)

    def save_consensus(self, safety: SafetyData | None, blocks: list[Proposal]) -> None:
        """Durably keep safety data and uncommitted proposals in one write (one
        fsync), before any vote they protect leaves."""
        self.ledger.put_consensus_data(*self._consensus_items(safety, blocks))

    def _consensus_items(
        self, safety: SafetyData | None, blocks: list[Proposal]
    ) -> tuple[bytes | None, list[tuple[bytes, bytes]]]:
        pending = [
            (pending_key(p.block.header.height, block_hash(self._suite, p.block.header)), encode(p))
            for p in blocks
        ]
        return None if safety is None else encode(safety), pending

    def save_safety(self, safety: SafetyData) -> None:
        self.save_consensus(safety, [])

    def save_block(self, proposal: Proposal) -> None:
        self.save_consensus(None, [proposal])

    def pending_blocks(self) -> list[Proposal]:
        """Kept proposals above the tip; the ones the tip has passed are deleted."""
        tip = self.tip_height()
        keep: list[Proposal] = []
        stale: list[bytes] = []
        for key, raw in self.ledger.pending_items():
            proposal = decode(raw, Proposal)
            if proposal.block.header.height > tip:
                keep.append(proposal)
            else:
                stale.append(key)
        if stale:
            self.ledger.delete_pending(stale)
        return keep

    def receipt(self, tx_id: bytes) -> Receipt | None:
        loc = self.ledger.get_tx_location(tx_id)
        return None if loc is None else self.ledger.get_receipt(*loc)

    def is_committed(self, tx_id: bytes) -> bool:
        return self.ledger.is_committed(tx_id)

    def committed_among(self, tx_ids: Collection[bytes]) -> set[bytes]:
        # One read transaction for the batch: opening one per id cost more than
        # the lookups.
        return self.ledger.committed_among(tx_ids)

    def overlay(self) -> StateView:
        return self.ledger.state.overlay()

    def state_root(self, view: Any) -> bytes:
        assert isinstance(view, Overlay)
        return self.ledger.state.compute_root(view)

    def commit_block(
        self,
        block: Block,
        receipts: list[Receipt],
        view: Any,
        cert: QuorumCert | None,
        result: ExecResult,
        consensus: tuple[SafetyData | None, list[Proposal]] | None = None,
    ) -> None:
        assert isinstance(view, Overlay)
        update = self.ledger.state.prepare(view)
        self.ledger.commit_block(
            block,
            receipts,
            update,
            None if cert is None else encode(cert),
            None if consensus is None else self._consensus_items(*consensus),
        )
        h = block.header.height
        _remember(self._results, h, result, RESULTS_CACHED_MAX)
        _remember(self._headers, h, block.header, HEADERS_CACHED_MAX)

    def get_state(self, contract: str, key: bytes, height: int | None = None) -> bytes | None:
        try:
            return self.ledger.state.get(namespaced_key(contract, key), height)
        except StateVersionError:
            return None

    def prove_state(self, contract: str, key: bytes, height: int) -> bytes:
        _, proof = self.ledger.state.prove(namespaced_key(contract, key), height)
        return encode_proof(proof)


def _remember(cache: OrderedDict[int, Any], key: int, value: Any, limit: int) -> None:
    cache[key] = value
    if len(cache) > limit:
        cache.popitem(last=False)


def open_chain_store(
    data_dir: Path,
    chain_id: str,
    suite: CryptoSuite,
    genesis: Genesis,
    state_cache_pages: int | None = None,
) -> LedgerStore:
    """Open (creating if new) and check the chain's ledger under ``data_dir``;
    ``state_cache_pages`` bounds the state's page cache (None: the default)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(str(data_dir))
    options = {"window": genesis.params.state_versions_kept}
    if state_cache_pages is not None:
        options["page_cache_max"] = state_cache_pages
    ledger = Ledger.open(store, suite, chain_id, **options)
    return LedgerStore(ledger, suite, store)
