"""Peer transport: mutual-TLS links between nodes carrying length-prefixed,
chain-scoped envelopes, with reconnects, bounded queues and bad-frame handling.
See docs/networking.md."""

from chaincity.net.config import BadFrame, TransportConfig
from chaincity.net.frames import (
    DEFAULT_KINDS,
    FRAME_SIZE_MAX,
    BadEnvelope,
    Delivery,
    Envelope,
    FrameDecoder,
    FrameError,
    FrameTooLarge,
    Kind,
    KindSpec,
    StreamBroken,
    decode_envelope,
    encode_frame,
)
from chaincity.net.outbox import LaneLimits, Outbox
from chaincity.net.peers import PeerDirectory, PeerRefused, PeerSpec
from chaincity.net.stats import PeerStats, TransportStats
from chaincity.net.tls import make_client_context, make_server_context
from chaincity.net.transport import FrameHandler, Transport

__all__ = [
    "DEFAULT_KINDS",
    "FRAME_SIZE_MAX",
    "BadEnvelope",
    "BadFrame",
    "Delivery",
    "Envelope",
    "FrameDecoder",
    "FrameError",
    "FrameHandler",
    "FrameTooLarge",
    "Kind",
    "KindSpec",
    "LaneLimits",
    "Outbox",
    "PeerDirectory",
    "PeerRefused",
    "PeerSpec",
    "PeerStats",
    "StreamBroken",
    "Transport",
    "TransportConfig",
    "TransportStats",
    "decode_envelope",
    "encode_frame",
    "make_client_context",
    "make_server_context",
]
