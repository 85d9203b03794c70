"""Transport settings: limits, timeouts and the kind table, all with defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chaincity.net.frames import DEFAULT_KINDS, FRAME_SIZE_MAX, HEADER_SIZE, Kind, KindSpec
from chaincity.net.outbox import LaneLimits

# Per peer: two maximum-size blocks of consensus/sync traffic, and a few MiB of gossip.
RELIABLE_QUEUE_DEFAULT = LaneLimits(4096, 2 * FRAME_SIZE_MAX)
LOSSY_QUEUE_DEFAULT = LaneLimits(1024, 8 * 1024 * 1024)


class BadFrame(Exception):
    """Raised by ``on_frame`` for a payload it rejects (malformed, wrongly
    signed): the transport logs it with the peer and counts it as a bad frame."""


@dataclass(frozen=True)
class TransportConfig:
    node_name: str
    chains: frozenset[str]
    host: str = "127.0.0.1"
    port: int = 0  # 0: an ephemeral port (see Transport.address)
    frame_size_max: int = FRAME_SIZE_MAX
    kinds: Mapping[int, KindSpec] = field(default_factory=lambda: dict(DEFAULT_KINDS))
    reliable_queue: LaneLimits = RELIABLE_QUEUE_DEFAULT
    lossy_queue: LaneLimits = LOSSY_QUEUE_DEFAULT
    write_batch_bytes_max: int = 256 * 1024
    write_buffer_high_bytes: int = 1024 * 1024
    backoff_initial_ms: int = 100
    backoff_max_ms: int = 10_000
    connect_timeout_ms: int = 5_000
    handshake_timeout_ms: int = 5_000
    ping_interval_ms: int = 5_000
    idle_timeout_ms: int = 20_000
    stop_timeout_ms: int = 1_000
    retire_grace_ms: int = 2_000  # a duplicate link is read this long before it is closed
    bad_frames_max: int = 16  # per link; one more and the link is closed
    handshakes_pending_max: int = 64
    handshakes_per_host_max: int = 8
    dedup_capacity: int = 16_384  # digests of recent gossip frames (~2 MB)

    def __post_init__(self) -> None:
        if not self.chains:
            raise ValueError("a transport hosts at least one chain")
        if Kind.PING not in self.kinds:
            raise ValueError("the kind table must include PING")
        if self.reliable_queue.bytes_max < HEADER_SIZE + self.frame_size_max:
            raise ValueError("the reliable queue must hold at least one frame of the maximum size")
        if self.idle_timeout_ms <= self.ping_interval_ms:
            raise ValueError("idle_timeout_ms must exceed ping_interval_ms")
