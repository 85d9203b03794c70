"""A binary Merkle root over an ordered list (receipts), with tagged leaves and nodes."""

from __future__ import annotations

from collections.abc import Sequence

from chaincity.crypto import CryptoSuite

_LEAF = b"\x00"
_NODE = b"\x01"


def merkle_root(suite: CryptoSuite, tag: bytes, leaves: Sequence[bytes]) -> bytes:
    """Root of ``leaves``; an odd node is promoted unchanged; the empty list has
    the tagged hash of nothing as its root."""
    if not leaves:
        return suite.tagged_hash(tag, b"")
    level = [suite.tagged_hash(tag, _LEAF + leaf) for leaf in leaves]
    while len(level) > 1:
        nxt = [
            suite.tagged_hash(tag, _NODE + level[i] + level[i + 1])
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]
