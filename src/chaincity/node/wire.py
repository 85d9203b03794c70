"""Node-to-node messages beyond consensus: gossip, block fetch and catch-up.

Each travels in the transport's chain-scoped envelope under its own kind; the
payload is a canonical struct, decoded with bounds like any outside input.
"""

from __future__ import annotations

import enum
from typing import Annotated

import msgspec
from msgspec import Meta

from chaincity.types.block import TxBytes
from chaincity.types.primitives import U64, HashBytes

GOSSIP_TXS_MAX = 2_000
SYNC_BLOCKS_MAX = 64
SYNC_RESPONSE_BYTES_MAX = 32 * 1024 * 1024


class Kind(enum.IntEnum):
    """Envelope kinds the node sends; numbers agree with the transport's registry
    (chaincity.net.frames.Kind) and are never reused."""

    CONSENSUS = 10
    TXS = 20
    SYNC_REQUEST = 30
    SYNC_RESPONSE = 31
    SYNC_STATUS = 32
    BLOCK_REQUEST = 40
    BLOCK_RESPONSE = 41


class TxBatch(msgspec.Struct, array_like=True, frozen=True, gc=False):
    txs: Annotated[tuple[TxBytes, ...], Meta(max_length=GOSSIP_TXS_MAX)]


class BlockRequest(msgspec.Struct, array_like=True, frozen=True, gc=False):
    block_hash: HashBytes


class SyncStatus(msgspec.Struct, array_like=True, frozen=True, gc=False):
    height: U64
    epoch: U64


class SyncRequest(msgspec.Struct, array_like=True, frozen=True, gc=False):
    from_height: U64
    count: Annotated[int, Meta(ge=1, le=SYNC_BLOCKS_MAX)]


class SyncItem(msgspec.Struct, array_like=True, frozen=True, gc=False):
    block: bytes  # canonical Block
    cert: bytes  # canonical QuorumCert, or empty


class SyncResponse(msgspec.Struct, array_like=True, frozen=True, gc=False):
    items: Annotated[tuple[SyncItem, ...], Meta(max_length=SYNC_BLOCKS_MAX)]
