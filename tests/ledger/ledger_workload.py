"""A deterministic block workload for ledger tests, and the writer process the crash test kills.

    python ledger_workload.py DATA_DIR HEIGHT_MAX

commits blocks until HEIGHT_MAX, each with consensus data in the same transaction,
printing each height once its commit returned (an acknowledgement: from then on the
block must survive any crash).
"""

from __future__ import annotations

import struct
import sys

from chaincity.crypto import get_suite
from chaincity.ledger import Ledger, open_store
from chaincity.ledger.ledger import pending_key
from chaincity.state import StateUpdate
from chaincity.types.block import Block, BlockHeader, Event, Receipt

CHAIN = "crash-test"
SUITE = get_suite("ed25519-sha256")
COPY_AFTER_PCT = 25
TXS_PER_BLOCK = 3


def next_commit(ledger: Ledger) -> tuple[Block, list[Receipt], StateUpdate, bytes]:
    """The next block of the workload, with its receipts, state update and certificate."""
    height = 0 if ledger.height is None else ledger.height + 1
    view = ledger.state.overlay()
    names = view.namespace("kv")
    for i in range(5):
        names.put(b"k%d" % ((height * 7 + i) % 97), b"v%d-%d" % (height, i))
    if height % 3 == 0:
        names.delete(b"k%d" % (height % 97))
    if height == 0:
        names.put(b"first", b"written once")  # merged, then never in a fresh entry again
    update = ledger.state.prepare(view)
    txs = tuple(b"tx-%d-%d" % (height, i) for i in range(TXS_PER_BLOCK))
    header = BlockHeader(
        chain_id=ledger.chain_id,
        epoch=0,
        height=height,
        round=height,
        parent_hash=ledger.tip_hash,
        payload_hash=SUITE.hash(b"".join(txs)),
        exec_height=max(height - 1, 0),
        state_root=ledger.state.root(height - 1) if height > 0 else b"",
        receipts_root=b"",
        proposer=0,
        timestamp_ms=height * 1000,
    )
    receipts = [
        Receipt(SUITE.hash(tx), height, i, 0, "", b"", 1, (Event("kv", "put", b"\x01"),))
        for i, tx in enumerate(txs)
    ]
    return Block(header, txs), receipts, update, b"cert" + struct.pack(">Q", height)


def commit_next(ledger: Ledger, *, with_consensus: bool = False) -> int:
    """Commit the next block; ``with_consensus``: with safety data and an uncommitted
    block named after its height, in the same transaction (as a voter's step does)."""
    block, receipts, update, cert = next_commit(ledger)
    height = block.header.height
    consensus = None
    if with_consensus:
        consensus = (safety_at(height), [(pending_key(height + 1, PENDING_HASH), b"next")])
    ledger.commit_block(block, receipts, update, cert, consensus)
    return height


PENDING_HASH = b"\x07" * SUITE.hash_size


def safety_at(height: int) -> bytes:
    return b"safety written with height %d" % height


def main() -> None:
    data_dir, height_max = sys.argv[1], int(sys.argv[2])
    # A short lag: many whole versions are copied forward and deleted between the kills.
    ledger = Ledger.open(
        open_store(data_dir), SUITE, CHAIN, window=8, copy_after_pct=COPY_AFTER_PCT
    )
    while ledger.height is None or ledger.height < height_max:
        height = commit_next(ledger, with_consensus=True)
        sys.stdout.write(f"{height}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
