"""Ledger: atomic commits, reads and indexes, refusals, start-up checks and `ledger check`."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chaincity.cli.main import app
from chaincity.ledger import (
    Ledger,
    LedgerCorruption,
    LedgerError,
    check_ledger,
    list_chains,
    open_store,
)
from chaincity.ledger.ledger import pending_key
from chaincity.state import namespaced_key, verify_state_proof
from chaincity.state.page import Page
from chaincity.state.tree import Bucket, Child, Leaf
from chaincity.state.values import MERGE_SPAN
from chaincity.types.block import Block, block_hash
from tests.ledger.ledger_workload import CHAIN, SUITE, commit_next, next_commit


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def ledger(data_dir: Path) -> Iterator[Ledger]:
    store = open_store(str(data_dir), durable=False)
    yield Ledger.open(store, SUITE, CHAIN, window=4)
    store.close()


def test_commit_and_read_back(ledger: Ledger) -> None:
    for _ in range(6):
        commit_next(ledger)
    assert ledger.height == 5
    block = ledger.get_block(5)
    assert isinstance(block, Block)
    assert ledger.get_block_by_hash(block_hash(SUITE, block.header)) == block
    receipts = ledger.get_receipts(5)
    assert [r.index for r in receipts] == [0, 1, 2]
    assert ledger.get_tx_location(receipts[1].tx_id) == (5, 1)
    assert ledger.is_committed(receipts[1].tx_id)
    assert ledger.get_commit_cert(5) == b"cert" + struct.pack(">Q", 5)
    key = namespaced_key("kv", b"k%d" % (5 * 7 % 97))
    value, proof = ledger.state.prove(key, 5)
    assert value == b"v5-0"
    assert verify_state_proof(SUITE, ledger.state.root(5), key, value, proof)
    assert check_ledger(ledger).ok


def test_refuses_blocks_that_do_not_extend(ledger: Ledger) -> None:
    commit_next(ledger)
    block, receipts, update, cert = next_commit(ledger)
    header = block.header
    wrong_parent = Block(type(header)(**{**_fields(header), "parent_hash": b"x" * 32}), block.txs)
    wrong_height = Block(type(header)(**{**_fields(header), "height": 5}), block.txs)
    wrong_chain = Block(type(header)(**{**_fields(header), "chain_id": "other"}), block.txs)
    for bad in (wrong_parent, wrong_height, wrong_chain):
        with pytest.raises(LedgerError):
            ledger.commit_block(bad, receipts, update, cert)
    with pytest.raises(LedgerError):
        ledger.commit_block(block, list(reversed(receipts)), update, cert)
    with pytest.raises(LedgerError):
        ledger.commit_block(block, receipts, update, b"x" * (1024 * 1024 + 1))
    assert ledger.height == 0
    ledger.commit_block(block, receipts, update, cert)
    assert ledger.height == 1


def test_duplicate_transaction_writes_nothing(ledger: Ledger) -> None:
    commit_next(ledger)
    block, receipts, update, cert = next_commit(ledger)
    first = ledger.get_receipts(0)[0]
    dup = [type(first)(**{**_fields(first), "height": 1, "index": 0}), *receipts[1:]]
    with pytest.raises(LedgerError):
        ledger.commit_block(block, dup, update, cert)
    assert ledger.height == 0
    assert ledger.get_block(1) is None
    assert ledger.state.latest_version == 0
    assert check_ledger(ledger).ok


def test_safety_data_and_metadata(ledger: Ledger) -> None:
    assert ledger.get_safety_data() is None
    ledger.put_safety_data(b"round 7")
    ledger.put_meta("genesis", b"g")
    assert ledger.get_safety_data() == b"round 7"
    assert ledger.get_meta("genesis") == b"g"
    with pytest.raises(LedgerError):
        ledger.put_meta("", b"g")


def test_chains_are_separate(data_dir: Path) -> None:
    store = open_store(str(data_dir), durable=False)
    one = Ledger.open(store, SUITE, CHAIN)
    two = Ledger.open(store, SUITE, "energy")
    commit_next(one)
    assert two.height is None and one.height == 0
    assert two.state.get(namespaced_key("kv", b"k0")) is None
    assert list_chains(store) == {CHAIN: SUITE.name, "energy": SUITE.name}
    store.close()


def test_startup_detects_a_tampered_state_root(data_dir: Path) -> None:
    store = open_store(str(data_dir), durable=False)
    ledger = Ledger.open(store, SUITE, CHAIN)
    for _ in range(3):
        commit_next(ledger)
    with store.write() as txn:
        table = ledger.state.tables["roots"]
        raw = txn.get(table, struct.pack(">Q", 2))
        assert raw is not None
        txn.put(table, struct.pack(">Q", 2), bytes([raw[0] ^ 1]) + raw[1:])
    with pytest.raises(LedgerCorruption, match="height 2"):
        Ledger.open(store, SUITE, CHAIN)
    store.close()


@pytest.mark.parametrize("where", ["fresh", "latest"])
def test_check_finds_a_tampered_value_and_a_broken_link(data_dir: Path, where: str) -> None:
    """A value not yet merged (fresh) or merged (latest) is changed on disk."""
    store = open_store(str(data_dir), durable=False)
    ledger = Ledger.open(store, SUITE, CHAIN, window=4)
    heights = 4 if where == "fresh" else MERGE_SPAN + 8  # long enough to merge some
    for _ in range(heights):
        commit_next(ledger)
    last = heights - 1
    pending = dict(ledger.state._pending.items())
    with store.write() as txn:
        table = ledger.state.tables[where]
        if where == "fresh":
            key_hash, version = next(iter(pending.items()))
            entry_key = struct.pack(">Q", version) + key_hash
        else:
            entry_key = next(k for k, _raw in txn.scan(table) if k not in pending)
        raw = txn.get(table, entry_key)
        assert raw is not None
        txn.put(table, entry_key, raw + b"!")
        txn.delete(f"{CHAIN}/blocks", struct.pack(">Q", 1))
    report = check_ledger(Ledger(store, SUITE, CHAIN))
    assert any(f"state root mismatch at height {last}" in e for e in report.errors)
    assert any("missing from height 1" in e for e in report.errors)
    store.close()


def test_cli_ledger_check(data_dir: Path) -> None:
    store = open_store(str(data_dir), durable=False)
    ledger = Ledger.open(store, SUITE, CHAIN)
    for _ in range(3):
        commit_next(ledger)
    store.close()
    runner = CliRunner()
    result = runner.invoke(app, ["ledger", "check", "--data", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert f"{CHAIN}: ok (3 blocks" in result.output
    store = open_store(str(data_dir), durable=False)
    store.open_tables([f"{CHAIN}/certs"])
    with store.write() as txn:
        txn.put(f"{CHAIN}/certs", struct.pack(">Q", 1), b"")
    store.close()
    result = runner.invoke(app, ["ledger", "check", "--data", str(data_dir)])
    assert result.exit_code == 1
    assert "certificate at height 1" in result.output
    missing = runner.invoke(app, ["ledger", "check", "--data", str(data_dir / "nope")])
    assert missing.exit_code == 2


def _fields(struct_value: object) -> dict[str, object]:
    return {f: getattr(struct_value, f) for f in struct_value.__struct_fields__}  # type: ignore[attr-defined]


def test_consensus_data_and_pending_blocks_are_written_together(tmp_path: Path) -> None:
    store = open_store(str(tmp_path))
    ledger = Ledger(store, SUITE, CHAIN)
    ledger.put_consensus_data(b"safety-1", [(b"h1", b"block-1"), (b"h2", b"block-2")])
    assert ledger.get_safety_data() == b"safety-1"
    assert ledger.pending_items() == [(b"h1", b"block-1"), (b"h2", b"block-2")]
    ledger.put_consensus_data(None, [(b"h3", b"block-3")])
    assert ledger.get_safety_data() == b"safety-1"
    ledger.delete_pending([b"h1", b"h3"])
    assert ledger.pending_items() == [(b"h2", b"block-2")]
    with pytest.raises(LedgerError):
        ledger.put_consensus_data(b"x" * (2 * 1024 * 1024), [(b"h4", b"block-4")])
    assert ledger.pending_items() == [(b"h2", b"block-2")]
    store.close()


def test_committing_a_height_drops_the_uncommitted_blocks_at_or_below_it(ledger: Ledger) -> None:
    hash_a, hash_b = b"\xaa" * SUITE.hash_size, b"\x01" * SUITE.hash_size
    pending = [
        (pending_key(0, hash_a), b"rival-0"),
        (pending_key(1, hash_b), b"block-1"),
        (pending_key(2, hash_a), b"block-2"),
        (b"h-old", b"old-shape"),  # another shape: left for the start-up cleanup
    ]
    ledger.put_consensus_data(None, pending)
    commit_next(ledger)  # height 0
    assert [k for k, _ in ledger.pending_items()] == [
        pending_key(1, hash_b),
        pending_key(2, hash_a),
        b"h-old",
    ]
    commit_next(ledger)  # height 1
    commit_next(ledger)  # height 2
    assert ledger.pending_items() == [(b"h-old", b"old-shape")]
    commit_next(ledger)  # nothing left to drop: nothing else changes
    assert ledger.pending_items() == [(b"h-old", b"old-shape")]


def test_a_block_commits_with_consensus_data_in_one_transaction(ledger: Ledger) -> None:
    block, receipts, update, cert = next_commit(ledger)
    hash_a = b"\xaa" * SUITE.hash_size
    ledger.put_consensus_data(None, [(pending_key(0, hash_a), b"block-0")])
    oversized = (b"x" * (2 * 1024 * 1024), [(pending_key(2, hash_a), b"block-2")])
    with pytest.raises(LedgerError):
        ledger.commit_block(block, receipts, update, cert, oversized)
    assert ledger.height is None and ledger.get_safety_data() is None  # nothing written
    consensus = (b"safety-0", [(pending_key(1, hash_a), b"block-1")])
    ledger.commit_block(block, receipts, update, cert, consensus)
    assert ledger.height == 0 and ledger.get_safety_data() == b"safety-0"
    # The block's own height is dropped from the uncommitted ones, the next one kept.
    assert ledger.pending_items() == [(pending_key(1, hash_a), b"block-1")]


def _child_page_key(ledger: Ledger) -> bytes:
    """The node key of a page under the latest root page."""
    with ledger.store.read() as txn:
        _root, root_version = ledger.state.root_ref(txn, ledger.state.latest_version or 0)
        page = ledger.state.load_page(txn, root_version, b"")
    for index, slot in enumerate(page.slots):
        if isinstance(slot, Child):
            return struct.pack(">Q", slot.version) + bytes((index,))
    raise AssertionError("the latest tree is a single page")


def test_check_finds_a_bucket_whose_keys_do_not_give_its_hash(data_dir: Path) -> None:
    """A bucket's stored hash is what its page hashes with: the check hashes its keys too."""
    store = open_store(str(data_dir), durable=False)
    ledger = Ledger.open(store, SUITE, CHAIN, window=4)
    for _ in range(12):
        commit_next(ledger)
    assert check_ledger(ledger).ok
    table = ledger.state.tables["nodes"]
    with store.write() as txn:
        root_version = ledger.state.root_ref(txn, 11)[1]
        node_key = struct.pack(">Q", root_version)
        page = ledger.state.load_page(txn, root_version, b"").copy()
        index, bucket = next((i, slot) for i, slot in enumerate(page.slots) if type(slot) is Bucket)
        first = bucket.leaves[0]
        changed = Leaf.of(first.key_hash, bytes(len(first.value_hash)))
        page.set_slot(index, Bucket(bucket.hash, (changed, *bucket.leaves[1:])))
        txn.put(table, node_key, page.encode())
        assert Page.decode(page.encode(), SUITE.hash_size).top(ledger.state.hasher) == (
            ledger.state.root(11)
        )
    report = check_ledger(Ledger(store, SUITE, CHAIN))
    assert any("a bucket in page root" in e for e in report.errors), report.errors
    store.close()


@pytest.mark.parametrize("fault", ["missing", "tampered"])
def test_check_walks_the_stored_tree_of_a_pruned_state(data_dir: Path, fault: str) -> None:
    """Many versions past lag + window (whole versions deleted), then one page broken."""
    store = open_store(str(data_dir), durable=False)
    ledger = Ledger.open(store, SUITE, CHAIN, window=4, copy_after_pct=20)
    for _ in range(40):
        commit_next(ledger)
    report = check_ledger(ledger)
    assert report.ok, report.errors
    assert report.state_pages > 1
    node_key = _child_page_key(ledger)
    table = ledger.state.tables["nodes"]
    with store.write() as txn:
        if fault == "missing":
            txn.delete(table, node_key)
        else:
            raw = txn.get(table, node_key)
            assert raw is not None
            txn.put(table, node_key, raw[:12] + bytes([raw[12] ^ 1]) + raw[13:])
    report = check_ledger(Ledger(store, SUITE, CHAIN))
    assert any("state tree at height 39" in e for e in report.errors), report.errors
    store.close()
