"""A bounded memory of recently delivered frames, to drop gossip seen twice."""

from __future__ import annotations

import hashlib
from collections import OrderedDict


class RecentDigests:
    """Remembers the digests of the last ``capacity`` distinct frames."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_add(self, frame: bytes) -> bool:
        """True if ``frame`` was seen recently; otherwise remember it and return False."""
        digest = hashlib.blake2b(frame, digest_size=16).digest()
        if digest in self._seen:
            self._seen.move_to_end(digest)
            return True
        self._seen[digest] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return False
