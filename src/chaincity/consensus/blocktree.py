"""The tree of proposed, not yet committed blocks, rooted at the last committed block."""

from __future__ import annotations

from chaincity.crypto import CryptoSuite
from chaincity.types.block import BlockHeader, block_hash
from chaincity.types.consensus import Proposal

BLOCKS_MAX = 1024  # uncommitted blocks kept; beyond that a proposal is dropped


class BlockTree:
    def __init__(self, suite: CryptoSuite, root: BlockHeader) -> None:
        self.suite = suite
        self.root = root
        self.root_hash = block_hash(suite, root)
        self.blocks: dict[bytes, Proposal] = {}

    def header(self, h: bytes) -> BlockHeader | None:
        if h == self.root_hash:
            return self.root
        p = self.blocks.get(h)
        return None if p is None else p.block.header

    def has(self, h: bytes) -> bool:
        return h == self.root_hash or h in self.blocks

    def is_full(self) -> bool:
        return len(self.blocks) >= BLOCKS_MAX

    def insert(self, h: bytes, proposal: Proposal) -> None:
        self.blocks[h] = proposal

    def path_from_root(self, h: bytes) -> tuple[list[tuple[bytes, Proposal]], bytes | None]:
        """Blocks from just above the root up to ``h``, oldest first, and the
        first missing hash on the way (None when the path is complete)."""
        path: list[tuple[bytes, Proposal]] = []
        cur = h
        for _ in range(BLOCKS_MAX + 1):
            if cur == self.root_hash:
                path.reverse()
                return path, None
            p = self.blocks.get(cur)
            if p is None:
                return [], cur
            if p.block.header.height <= self.root.height:
                return [], None  # on a branch that lost: nothing to commit
            path.append((cur, p))
            cur = p.block.header.parent_hash
        return [], None

    def set_root(self, header: BlockHeader) -> None:
        """Make a committed block the root and forget every block not above it."""
        self.root = header
        self.root_hash = block_hash(self.suite, header)
        keep: dict[bytes, Proposal] = {}
        for h, p in sorted(self.blocks.items(), key=lambda kv: kv[1].block.header.height):
            parent = p.block.header.parent_hash
            if parent == self.root_hash or parent in keep:
                keep[h] = p
        self.blocks = keep

    def get(self, h: bytes) -> Proposal | None:
        return self.blocks.get(h)
