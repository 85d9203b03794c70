"""A bounded per-peer send queue with the delivery policy of each kind.

Two FIFO lanes, each limited in frames and in bytes:

- reliable (consensus, sync): when full, a new frame is *refused* and the
  caller is told (``push`` returns False); nothing already queued is dropped;
- lossy (gossip): when full, the *oldest* lossy frames are dropped to make
  room, and counted.

The reliable lane is drained first, so a gossip flood never delays a vote.
Order holds within a lane, not between lanes. The queue outlives a
connection: what was not written yet goes out on the next link to the peer.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from chaincity.net.frames import Delivery


@dataclass(frozen=True, slots=True)
class LaneLimits:
    frames_max: int
    bytes_max: int

    def __post_init__(self) -> None:
        if self.frames_max < 1 or self.bytes_max < 1:
            raise ValueError("queue limits must be positive")


class _Lane:
    __slots__ = ("frames", "limits", "size_bytes")

    def __init__(self, limits: LaneLimits) -> None:
        self.limits = limits
        self.frames: deque[bytes] = deque()
        self.size_bytes = 0

    def fits(self, size: int) -> bool:
        return (
            len(self.frames) < self.limits.frames_max
            and self.size_bytes + size <= self.limits.bytes_max
        )

    def append(self, frame: bytes) -> None:
        self.frames.append(frame)
        self.size_bytes += len(frame)

    def popleft(self) -> bytes:
        frame = self.frames.popleft()
        self.size_bytes -= len(frame)
        return frame


class Outbox:
    """Frames waiting to be written to one peer."""

    def __init__(self, reliable: LaneLimits, lossy: LaneLimits) -> None:
        self._reliable = _Lane(reliable)
        self._lossy = _Lane(lossy)
        self.dropped = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._reliable.frames) + len(self._lossy.frames)

    @property
    def size_bytes(self) -> int:
        return self._reliable.size_bytes + self._lossy.size_bytes

    def push(self, frame: bytes, delivery: Delivery) -> bool:
        """Queue ``frame``; False if it was refused (reliable lane full or a
        frame larger than the lane could ever hold)."""
        if delivery is Delivery.RELIABLE:
            return self._push_reliable(frame)
        return self._push_lossy(frame)

    def _push_reliable(self, frame: bytes) -> bool:
        if not self._reliable.fits(len(frame)):
            self.refused += 1
            return False
        self._reliable.append(frame)
        return True

    def _push_lossy(self, frame: bytes) -> bool:
        lane = self._lossy
        if len(frame) > lane.limits.bytes_max:
            self.refused += 1
            return False
        while not lane.fits(len(frame)):
            lane.popleft()
            self.dropped += 1
        lane.append(frame)
        return True

    def pop_batch(self, size_bytes_max: int) -> list[bytes]:
        """Frames to write now, reliable first: at least one if any is queued,
        then more while the batch stays under ``size_bytes_max``."""
        batch: list[bytes] = []
        total = 0
        for lane in (self._reliable, self._lossy):
            while lane.frames and (not batch or total + len(lane.frames[0]) <= size_bytes_max):
                frame = lane.popleft()
                batch.append(frame)
                total += len(frame)
            if lane.frames:
                break
        return batch

    def clear(self) -> int:
        """Forget every queued frame; returns how many there were."""
        count = len(self)
        for lane in (self._reliable, self._lossy):
            lane.frames.clear()
            lane.size_bytes = 0
        return count
