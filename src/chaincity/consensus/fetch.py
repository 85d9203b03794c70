"""Bounded bookkeeping of the blocks a validator is fetching from its peers."""

from __future__ import annotations

from collections.abc import Callable

from chaincity.consensus.events import FetchBlock

FETCHES_MAX = 32  # block fetches in flight
ATTEMPTS_MAX = 8  # then give up: a later certificate will ask again


class Fetcher:
    def __init__(self, size: int, me: int | None) -> None:
        self.size = size
        self.me = me
        self.pending: dict[bytes, int] = {}  # hash -> attempts so far

    def start(self, h: bytes, sender: int, round_: int) -> FetchBlock | None:
        """Ask the peer that mentioned ``h`` first (it should have it)."""
        if h in self.pending or len(self.pending) >= FETCHES_MAX:
            return None
        valid_sender = 0 <= sender < self.size and sender != self.me
        peer = sender if valid_sender else self._peer(round_)
        if peer is None:
            return None
        self.pending[h] = 0
        return FetchBlock(h, peer)

    def retry(self, round_: int) -> list[FetchBlock]:
        """On a timer: ask again, each time another peer, until ATTEMPTS_MAX."""
        out: list[FetchBlock] = []
        for h, attempts in list(self.pending.items()):
            peer = self._peer(round_ + attempts + 1)
            if attempts + 1 >= ATTEMPTS_MAX or peer is None:
                del self.pending[h]
                continue
            self.pending[h] = attempts + 1
            out.append(FetchBlock(h, peer))
        return out

    def take(self, h: bytes) -> bool:
        """Whether ``h`` was asked for; it no longer is."""
        return self.pending.pop(h, None) is not None

    def forget_if(self, done: Callable[[bytes], bool]) -> None:
        self.pending = {h: a for h, a in self.pending.items() if not done(h)}

    def _peer(self, start: int) -> int | None:
        for k in range(self.size):
            peer = (start + k) % self.size
            if peer != self.me:
                return peer
        return None
