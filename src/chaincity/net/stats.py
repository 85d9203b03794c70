"""Counters for one peer and for the whole transport."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class PeerStats:
    connected: bool = False
    links_up: int = 0  # links established, in either direction
    reconnects: int = 0  # links established after a link was lost (not replaced)
    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    dropped: int = 0  # lossy frames dropped from a full send queue
    refused: int = 0  # reliable frames refused by a full send queue
    duplicates: int = 0  # frames already delivered recently
    bad_frames: int = 0  # malformed, unknown kind or chain, oversized, rejected by handler
    handler_errors: int = 0  # on_frame raised something other than BadFrame
    queued_frames: int = 0
    queued_bytes: int = 0


@dataclass(slots=True)
class TransportStats:
    accepted: int = 0  # inbound TCP connections
    handshakes_failed: int = 0  # TLS failed (unknown CA, no client cert, timeout)
    peers_refused: int = 0  # TLS fine but the certificate is no configured peer
    duplicate_links: int = 0  # links closed by the one-link-per-peer rule
    busy_refused: int = 0  # inbound connections over the pending-handshake limit
