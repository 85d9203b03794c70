"""Blocks, headers and receipts.

Consensus orders blocks; execution runs them after commit. A header therefore
attests the *latest executed* result (``exec_height``, ``state_root``,
``receipts_root``), not its own, and a validator votes for a proposal only if
that attested result equals its own (DESIGN.md, "Ordering, execution,
attestation").
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from chaincity.codec import Tag, encode
from chaincity.crypto import CryptoSuite
from chaincity.types.primitives import (
    BLOCK_TXS_MAX,
    ERROR_SIZE_MAX,
    EVENT_DATA_SIZE_MAX,
    EVENTS_MAX,
    RETURN_SIZE_MAX,
    TX_SIZE_MAX,
    U16,
    U32,
    U64,
    ChainIdField,
    HashBytes,
    Name,
)

TxBytes = Annotated[bytes, Meta(max_length=TX_SIZE_MAX)]


class BlockHeader(msgspec.Struct, array_like=True, frozen=True, gc=False):
    chain_id: ChainIdField
    epoch: U64
    height: U64
    round: U64
    parent_hash: HashBytes
    payload_hash: HashBytes
    exec_height: U64  # the attested execution result: latest executed height,
    state_root: HashBytes  # its state root,
    receipts_root: HashBytes  # and its receipts root
    proposer: U16  # index in the epoch's validator set
    timestamp_ms: U64


class Block(msgspec.Struct, array_like=True, frozen=True, gc=False):
    header: BlockHeader
    # Canonical encodings of the transactions, kept as bytes so a block is
    # relayed and stored without re-encoding.
    txs: Annotated[tuple[TxBytes, ...], Meta(max_length=BLOCK_TXS_MAX)]


def block_hash(suite: CryptoSuite, header: BlockHeader) -> bytes:
    return suite.tagged_hash(Tag.BLOCK, encode(header))


def payload_hash(suite: CryptoSuite, tx_ids: list[bytes] | tuple[bytes, ...]) -> bytes:
    """Commitment to a block's ordered transactions (by id)."""
    return suite.tagged_hash(Tag.PAYLOAD, b"".join(tx_ids))


class Event(msgspec.Struct, array_like=True, frozen=True, gc=False):
    contract: Name
    name: Name
    data: Annotated[bytes, Meta(max_length=EVENT_DATA_SIZE_MAX)]  # codec.encode_value


RECEIPT_OK = 0
RECEIPT_FAILED = 1


class Receipt(msgspec.Struct, array_like=True, frozen=True, gc=False):
    tx_id: HashBytes
    height: U64
    index: U32
    status: Annotated[int, Meta(ge=0, le=255)]
    error: Annotated[str, Meta(max_length=ERROR_SIZE_MAX)]
    result: Annotated[bytes, Meta(max_length=RETURN_SIZE_MAX)]  # codec.encode_value
    steps: U64
    events: Annotated[tuple[Event, ...], Meta(max_length=EVENTS_MAX)]
