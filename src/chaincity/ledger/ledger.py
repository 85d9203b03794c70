"""The block store of one chain: blocks, receipts, indexes, certificates, state.

One committed block's data, its state version, receipts, indexes and commit
certificate go into ONE write transaction (:meth:`Ledger.commit_block`): a
process killed at any instant restarts with the whole block or none of it.
Commits are durable (fsync) unless the store was opened with ``durable=False``.

Several chains share one store; every table name starts with the chain id.
Tables (``<c>`` is the chain id):

- ``<c>/blocks``: be64(height) -> Block; ``<c>/hashes``: block hash -> be64(height)
- ``<c>/receipts``: be64(height) + be32(index) -> Receipt
- ``<c>/txs``: tx id -> be64(height) + be32(receipt index)
- ``<c>/certs``: be64(height) -> commit certificate (opaque bytes, from consensus)
- ``<c>/meta``: ``height``, ``tip`` (hash of the latest block), ``safety`` (consensus
  safety data, opaque bytes) and chain metadata under ``m/<name>``
- ``<c>/state.*``: see chaincity.state.store
- ``chains``: chain id -> crypto suite name (shared, lets tools open every chain)
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from chaincity.codec import CodecError, decode, encode
from chaincity.crypto import CryptoSuite, get_suite
from chaincity.state import AuthenticatedState, KVStore, LmdbConfig, LmdbStore, StateUpdate
from chaincity.state.kv import ReadTxn, WriteTxn
from chaincity.state.store import WINDOW_DEFAULT
from chaincity.state.tree import StateCorruption, page_hash
from chaincity.types.block import Block, BlockHeader, Receipt, block_hash
from chaincity.types.primitives import BLOCK_TXS_MAX, CHAIN_ID_PATTERN

CERT_SIZE_MAX = 1024 * 1024
SAFETY_SIZE_MAX = 1024 * 1024
META_SIZE_MAX = 1024 * 1024
PENDING_MAX = 1024  # uncommitted blocks kept for a restart
PENDING_SIZE_MAX = 32 * 1024 * 1024
META_NAME_MAX = 64
CHAINS_TABLE = "chains"
LEDGER_SUBDIR = "ledger"

T = TypeVar("T")
_U64 = struct.Struct(">Q")
_LOC = struct.Struct(">QI")


class LedgerError(Exception):
    """A request the ledger refuses (wrong height, wrong chain, bad sizes); nothing written."""


class LedgerCorruption(Exception):
    """Stored data is inconsistent; the message names the height."""


def open_store(data_dir: str, *, durable: bool = True, readonly: bool = False) -> LmdbStore:
    """The store of a node's data directory (``DIR/ledger``)."""
    path = os.path.join(data_dir, LEDGER_SUBDIR)
    if readonly and not os.path.isdir(path):
        raise LedgerError(f"no ledger at {path}")
    return LmdbStore(LmdbConfig(path, durable=durable, readonly=readonly))


def list_chains(store: KVStore) -> dict[str, str]:
    """Chain id -> suite name of every chain in ``store``."""
    store.open_tables([CHAINS_TABLE])
    with store.read() as txn:
        return {k.decode(): v.decode() for k, v in txn.scan(CHAINS_TABLE)}


def _height_key(height: int) -> bytes:
    return _U64.pack(height)


def pending_key(height: int, block_hash: bytes) -> bytes:
    """The key of an uncommitted block: by height first, so committing a height finds
    the ones it makes useless at the start of the table."""
    return _U64.pack(height) + block_hash


class Ledger:
    """One chain's ledger. Construct with :meth:`open` (which checks it), then commit blocks."""

    def __init__(
        self,
        store: KVStore,
        suite: CryptoSuite,
        chain_id: str,
        *,
        window: int = WINDOW_DEFAULT,
        page_cache_max: int | None = None,
        copy_after_pct: int | None = None,
    ) -> None:
        if not re.fullmatch(CHAIN_ID_PATTERN, chain_id):
            raise LedgerError(f"invalid chain id {chain_id!r}")
        self._store = store
        self._suite = suite
        self.chain_id = chain_id
        self._t = {t: f"{chain_id}/{t}" for t in ("blocks", "hashes", "receipts", "txs", "certs")}
        self._t["meta"] = f"{chain_id}/meta"
        self._t["pending"] = f"{chain_id}/pending"
        store.open_tables([*self._t.values(), CHAINS_TABLE])
        extra = {} if page_cache_max is None else {"page_cache_max": page_cache_max}
        if copy_after_pct is not None:
            extra["copy_after_pct"] = copy_after_pct
        self.state = AuthenticatedState(store, suite, prefix=f"{chain_id}/", window=window, **extra)
        self._register_suite()
        with store.read() as txn:
            raw = txn.get(self._t["meta"], b"height")
            self._height = None if raw is None else int(_U64.unpack(raw)[0])
            self._tip = txn.get(self._t["meta"], b"tip") or b""

    @classmethod
    def open(cls, store: KVStore, suite: CryptoSuite, chain_id: str, **options: int) -> Ledger:
        """Open and check the ledger (raises LedgerCorruption naming the height)."""
        ledger = cls(store, suite, chain_id, **options)
        ledger.verify_startup()
        return ledger

    def _register_suite(self) -> None:
        key = self.chain_id.encode()
        with self._store.read() as txn:
            known = txn.get(CHAINS_TABLE, key)
        if known is None:
            with self._store.write() as wtxn:
                wtxn.put(CHAINS_TABLE, key, self._suite.name.encode())
        elif known.decode() != self._suite.name:
            raise LedgerError(f"chain {self.chain_id} uses suite {known.decode()}")

    # -- reads ----------------------------------------------------------------

    @property
    def height(self) -> int | None:
        """The latest committed height, None before the first block."""
        return self._height

    @property
    def store(self) -> KVStore:
        return self._store

    @property
    def tip_hash(self) -> bytes:
        return self._tip

    def get_block(self, height: int) -> Block | None:
        with self._store.read() as txn:
            raw = txn.get(self._t["blocks"], _height_key(height))
        return None if raw is None else self._decode(raw, Block, height)

    def get_block_by_hash(self, hash_: bytes) -> Block | None:
        height = self.get_height_of(hash_)
        return None if height is None else self.get_block(height)

    def get_height_of(self, hash_: bytes) -> int | None:
        with self._store.read() as txn:
            raw = txn.get(self._t["hashes"], hash_)
        return None if raw is None else int(_U64.unpack(raw)[0])

    def get_tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        """(height, receipt index) of a committed transaction."""
        with self._store.read() as txn:
            raw = txn.get(self._t["txs"], tx_id)
        return None if raw is None else _LOC.unpack(raw)

    def is_committed(self, tx_id: bytes) -> bool:
        return self.get_tx_location(tx_id) is not None

    def get_receipt(self, height: int, index: int) -> Receipt | None:
        with self._store.read() as txn:
            raw = txn.get(self._t["receipts"], _LOC.pack(height, index))
        return None if raw is None else self._decode(raw, Receipt, height)

    def get_receipts(self, height: int) -> list[Receipt]:
        """A block's receipts in order (its events are inside them)."""
        out: list[Receipt] = []
        with self._store.read() as txn:
            for key, raw in txn.scan(self._t["receipts"], _LOC.pack(height, 0)):
                if key[:8] != _height_key(height) or len(out) > BLOCK_TXS_MAX:
                    break
                out.append(self._decode(raw, Receipt, height))
        return out

    def get_commit_cert(self, height: int) -> bytes | None:
        with self._store.read() as txn:
            return txn.get(self._t["certs"], _height_key(height))

    def get_safety_data(self) -> bytes | None:
        with self._store.read() as txn:
            return txn.get(self._t["meta"], b"safety")

    def get_meta(self, name: str) -> bytes | None:
        with self._store.read() as txn:
            return txn.get(self._t["meta"], self._meta_key(name))

    @staticmethod
    def _decode(raw: bytes, typ: type[T], height: int) -> T:
        try:
            return decode(raw, typ)
        except CodecError as exc:
            message = f"{typ.__name__} at height {height} does not decode: {exc}"
            raise LedgerCorruption(message) from None

    # -- writes ---------------------------------------------------------------

    def commit_block(
        self,
        block: Block,
        receipts: Sequence[Receipt],
        state_update: StateUpdate,
        commit_cert: bytes | None = None,
        consensus: tuple[bytes | None, Sequence[tuple[bytes, bytes]]] | None = None,
    ) -> bytes:
        """Store a block with its receipts, state version and certificate, atomically and
        durably. Returns the block hash. Raises LedgerError (nothing written) if the block
        does not extend this ledger. ``consensus``: (safety data, uncommitted blocks) as
        ``put_consensus_data`` takes them, written in the same transaction."""
        header = block.header
        self._check_extends(header)
        self._check_receipts(header.height, receipts)
        if state_update.version != header.height:
            raise LedgerError(f"state version {state_update.version} for height {header.height}")
        if commit_cert is not None and len(commit_cert) > CERT_SIZE_MAX:
            raise LedgerError(f"commit certificate exceeds {CERT_SIZE_MAX} bytes")
        if consensus is not None:
            self._check_consensus_data(*consensus)
        hash_ = block_hash(self._suite, header)
        with self._store.write() as txn:
            self._check_tx_ids_fresh(txn, receipts)
            key = _height_key(header.height)
            txn.put(self._t["blocks"], key, encode(block))
            txn.put(self._t["hashes"], hash_, key)
            locs = [_LOC.pack(header.height, r.index) for r in receipts]
            # Receipt keys start with the new height: appended, they fill pages densely.
            txn.put_many(
                self._t["receipts"],
                [(loc, encode(r)) for loc, r in zip(locs, receipts, strict=True)],
                append=True,
            )
            # Ids are random: in key order, neighbouring inserts share B-tree pages.
            txn.put_many(
                self._t["txs"],
                sorted((r.tx_id, loc) for r, loc in zip(receipts, locs, strict=True)),
            )
            if commit_cert is not None:
                txn.put(self._t["certs"], key, commit_cert)
            self.state.write_update(txn, state_update)
            txn.put(self._t["meta"], b"height", key)
            txn.put(self._t["meta"], b"tip", hash_)
            self._drop_pending_through(txn, header.height)
            if consensus is not None:  # after the drop: it names heights above this one
                self._put_consensus_data(txn, *consensus)
        self.state.after_commit(state_update)
        self._height, self._tip = header.height, hash_
        return hash_

    def _drop_pending_through(self, txn: WriteTxn, height: int) -> None:
        """Uncommitted blocks at or below a committed height are of no use any more: the
        one committed is stored as a block, the others lost their race. Their keys start
        with the height, so they are the first ones in the table."""
        last, key_size = _height_key(height), 8 + self._suite.hash_size
        done: list[bytes] = []
        for key, _raw in txn.scan(self._t["pending"]):
            if len(done) >= PENDING_MAX or len(key) != key_size or key[:8] > last:
                break  # keys of any other shape are sorted out at the next start
            done.append(key)
        txn.delete_many(self._t["pending"], done)

    def _check_extends(self, header: BlockHeader) -> None:
        if header.chain_id != self.chain_id:
            raise LedgerError(f"block of chain {header.chain_id!r} in ledger {self.chain_id!r}")
        expected = 0 if self._height is None else self._height + 1
        if header.height != expected:
            raise LedgerError(f"block height {header.height}, expected {expected}")
        if self._height is not None and header.parent_hash != self._tip:
            raise LedgerError(f"block {header.height} does not link to block {self._height}")

    def _check_receipts(self, height: int, receipts: Sequence[Receipt]) -> None:
        if len(receipts) > BLOCK_TXS_MAX:
            raise LedgerError(f"more than {BLOCK_TXS_MAX} receipts")
        seen: set[bytes] = set()
        for index, receipt in enumerate(receipts):
            if receipt.height != height or receipt.index != index:
                raise LedgerError(f"receipt {index} names height {receipt.height}/{receipt.index}")
            if receipt.tx_id in seen:
                raise LedgerError(f"transaction {receipt.tx_id.hex()} twice in block {height}")
            seen.add(receipt.tx_id)

    def _check_tx_ids_fresh(self, txn: ReadTxn, receipts: Sequence[Receipt]) -> None:
        for receipt in receipts:
            if txn.get(self._t["txs"], receipt.tx_id) is not None:
                raise LedgerError(f"transaction {receipt.tx_id.hex()} is already committed")

    def put_commit_cert(self, height: int, cert: bytes) -> None:
        """Store (or replace) the commit certificate of a stored block."""
        if len(cert) > CERT_SIZE_MAX:
            raise LedgerError(f"commit certificate exceeds {CERT_SIZE_MAX} bytes")
        if self._height is None or not 0 <= height <= self._height:
            raise LedgerError(f"no block at height {height}")
        with self._store.write() as txn:
            txn.put(self._t["certs"], _height_key(height), cert)

    def put_safety_data(self, data: bytes) -> None:
        """Durably store consensus safety data; returns only once it is on disk."""
        if len(data) > SAFETY_SIZE_MAX:
            raise LedgerError(f"safety data exceeds {SAFETY_SIZE_MAX} bytes")
        with self._store.write() as txn:
            txn.put(self._t["meta"], b"safety", data)

    def put_consensus_data(
        self, safety: bytes | None, pending: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        """Durably store consensus safety data and uncommitted blocks (keyed by
        ``pending_key``) in one write transaction; returns only once they are on disk.
        Committing a block deletes those at or below its height."""
        self._check_consensus_data(safety, pending)
        with self._store.write() as txn:
            self._put_consensus_data(txn, safety, pending)

    @staticmethod
    def _check_consensus_data(safety: bytes | None, pending: Sequence[tuple[bytes, bytes]]) -> None:
        if safety is not None and len(safety) > SAFETY_SIZE_MAX:
            raise LedgerError(f"safety data exceeds {SAFETY_SIZE_MAX} bytes")
        if len(pending) > PENDING_MAX or any(len(raw) > PENDING_SIZE_MAX for _, raw in pending):
            raise LedgerError("too many or too large uncommitted blocks")

    def _put_consensus_data(
        self, txn: WriteTxn, safety: bytes | None, pending: Sequence[tuple[bytes, bytes]]
    ) -> None:
        if safety is not None:
            txn.put(self._t["meta"], b"safety", safety)
        for key, raw in pending:
            txn.put(self._t["pending"], key, raw)

    def pending_items(self) -> list[tuple[bytes, bytes]]:
        """Stored uncommitted blocks (hash, bytes), at most PENDING_MAX."""
        out: list[tuple[bytes, bytes]] = []
        with self._store.read() as txn:
            for item in txn.scan(self._t["pending"]):
                if len(out) >= PENDING_MAX:
                    break
                out.append(item)
        return out

    def delete_pending(self, keys: Sequence[bytes]) -> None:
        with self._store.write() as txn:
            for key in keys:
                txn.delete(self._t["pending"], key)

    def committed_among(self, tx_ids: Iterable[bytes]) -> set[bytes]:
        """The ids among ``tx_ids`` that are committed, in one read transaction."""
        with self._store.read() as txn:
            return {t for t in tx_ids if txn.get(self._t["txs"], t) is not None}

    def put_meta(self, name: str, data: bytes) -> None:
        """Chain metadata (genesis, parameters) under a short name."""
        if len(data) > META_SIZE_MAX:
            raise LedgerError(f"metadata exceeds {META_SIZE_MAX} bytes")
        with self._store.write() as txn:
            txn.put(self._t["meta"], self._meta_key(name), data)

    @staticmethod
    def _meta_key(name: str) -> bytes:
        if not 0 < len(name) <= META_NAME_MAX:
            raise LedgerError(f"metadata name must be 1..{META_NAME_MAX} characters")
        return b"m/" + name.encode()

    # -- self-checks ----------------------------------------------------------

    def verify_startup(self) -> None:
        """The cheap checks run at every start: tip, its hash link, latest state root."""
        height = self._height
        if height is None:
            if self.state.latest_version is not None:
                raise LedgerCorruption("state has versions but the ledger has no blocks")
            return
        block = self.get_block(height)
        if not isinstance(block, Block):
            raise LedgerCorruption(f"latest block (height {height}) is missing")
        if block_hash(self._suite, block.header) != self._tip:
            raise LedgerCorruption(f"block at height {height} does not hash to the stored tip")
        if height > 0:
            parent = self.get_block(height - 1)
            if parent is not None and block_hash(self._suite, parent.header) != (
                block.header.parent_hash
            ):
                raise LedgerCorruption(f"block at height {height} does not link to its parent")
        if self.state.latest_version != height:
            raise LedgerCorruption(
                f"state version {self.state.latest_version} does not match height {height}"
            )
        self._verify_state_root(height)

    def _verify_state_root(self, height: int) -> None:
        with self._store.read() as txn:
            root, page_version = self.state.root_ref(txn, height)
            try:
                page = self.state.load_page(txn, page_version, b"")
            except StateCorruption as exc:
                raise LedgerCorruption(f"state at height {height}: {exc}") from None
        hasher = self.state.hasher
        if page_hash(hasher, page.slots) != root or page.top(hasher) != root:
            raise LedgerCorruption(f"state root mismatch at height {height}")

    def iter_blocks(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """(height, raw block) from ``start``; the caller bounds how many it takes."""
        with self._store.read() as txn:
            for key, raw in txn.scan(self._t["blocks"], _height_key(start)):
                yield int(_U64.unpack(key)[0]), raw


def open_ledger(
    data_dir: str,
    chain_id: str,
    suite_name: str,
    *,
    durable: bool = True,
    window: int = WINDOW_DEFAULT,
) -> Ledger:
    """Open (creating if new) and check the ledger of ``chain_id`` in a data directory."""
    store = open_store(data_dir, durable=durable)
    return Ledger.open(store, get_suite(suite_name), chain_id, window=window)
