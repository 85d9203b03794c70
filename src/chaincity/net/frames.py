"""Frames on a peer link: a 4-byte big-endian length, then one canonical Envelope.

This module does no I/O (h11 style): :class:`FrameDecoder` takes bytes as they
arrive and gives back whole frames; a broken stream becomes an error value that
names the problem. Rules:

- a length prefix above the decoder's ``frame_size_max`` is refused as soon as
  the 4 prefix bytes are in, before any of the body is buffered;
- a zero length is refused (no envelope is empty);
- after a framing error the stream cannot be resynchronised, so the decoder
  stays failed and the link must be closed;
- an envelope that does not decode is a bad *frame*, not a bad *stream*: the
  length prefix still told where the next frame starts.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Annotated

import msgspec
from msgspec import Meta

from chaincity.codec import CodecError, decode, encode
from chaincity.types.primitives import BLOCK_SIZE_MAX, U16, ChainIdField

HEADER_SIZE = 4
_LENGTH = struct.Struct(">I")
# A block of BLOCK_SIZE_MAX plus its certificate and the envelope must fit.
FRAME_SIZE_MAX = BLOCK_SIZE_MAX + 1024 * 1024
PAYLOAD_SIZE_MAX = FRAME_SIZE_MAX - 128

Payload = Annotated[bytes, Meta(max_length=PAYLOAD_SIZE_MAX)]


class Envelope(msgspec.Struct, array_like=True, frozen=True):
    """One message between peers. The payload is decoded by the receiver of
    ``kind``; the transport only checks the chain and the per-kind size."""

    chain_id: ChainIdField
    kind: U16
    payload: Payload


class Kind(enum.IntEnum):
    """Registry of envelope kinds. Numbers are part of the wire format: never reuse one."""

    PING = 1  # keepalive; never handed to on_frame
    CONSENSUS = 10  # proposals, votes, timeouts
    TX_GOSSIP = 20  # batches of transactions from the mempool
    SYNC_REQUEST = 30
    SYNC_RESPONSE = 31  # blocks with their commit certificates


class Delivery(enum.Enum):
    """What a full send queue does with one more frame of a kind."""

    # Refused and reported to the caller (send returns False), never dropped unseen.
    RELIABLE = "reliable"
    # The oldest queued lossy frame is dropped (counted); gossip is repeated anyway.
    LOSSY = "lossy"


@dataclass(frozen=True, slots=True)
class KindSpec:
    payload_size_max: int
    delivery: Delivery
    # Drop a frame whose exact bytes were delivered recently (from any peer).
    dedup: bool = False


DEFAULT_KINDS: dict[int, KindSpec] = {
    Kind.PING: KindSpec(0, Delivery.LOSSY),
    Kind.CONSENSUS: KindSpec(PAYLOAD_SIZE_MAX, Delivery.RELIABLE),
    Kind.TX_GOSSIP: KindSpec(4 * 1024 * 1024, Delivery.LOSSY, dedup=True),
    Kind.SYNC_REQUEST: KindSpec(4 * 1024, Delivery.RELIABLE),
    Kind.SYNC_RESPONSE: KindSpec(PAYLOAD_SIZE_MAX, Delivery.RELIABLE),
}


class FrameError(Exception):
    """The peer sent something that is not a valid frame (the peer's fault)."""


class FrameTooLarge(FrameError):
    pass


class StreamBroken(FrameError):
    """The byte stream can no longer be split into frames."""


class BadEnvelope(FrameError):
    pass


def encode_frame(envelope: Envelope) -> bytes:
    """Length prefix + canonical envelope bytes."""
    body = encode(envelope)
    return len(body).to_bytes(HEADER_SIZE, "big") + body


def decode_envelope(frame: bytes, kinds: dict[int, KindSpec]) -> Envelope:
    """The envelope in a frame body; BadEnvelope names what is wrong with it."""
    try:
        envelope = decode(frame, Envelope, size_max=FRAME_SIZE_MAX)
    except CodecError as exc:
        raise BadEnvelope(f"malformed envelope: {exc}") from None
    spec = kinds.get(envelope.kind)
    if spec is None:
        raise BadEnvelope(f"unknown kind {envelope.kind}")
    if len(envelope.payload) > spec.payload_size_max:
        raise BadEnvelope(
            f"kind {envelope.kind} payload of {len(envelope.payload)} bytes "
            f"exceeds {spec.payload_size_max}"
        )
    return envelope


class FrameDecoder:
    """Splits a byte stream into frame bodies, many per call."""

    def __init__(self, frame_size_max: int = FRAME_SIZE_MAX) -> None:
        if not 0 < frame_size_max <= FRAME_SIZE_MAX:
            raise ValueError(f"frame_size_max must be in 1..{FRAME_SIZE_MAX}")
        self._frame_size_max = frame_size_max
        self._buffer = bytearray()
        self.error: FrameError | None = None

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Frame bodies completed by ``data``. On a framing error, the frames
        before it are still returned and ``error`` is set; later calls raise it."""
        if self.error is not None:
            raise self.error
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        pos = 0
        end_data = len(buffer)
        with memoryview(buffer) as view:  # one copy per frame, none per slice
            while end_data - pos >= HEADER_SIZE:
                (length,) = _LENGTH.unpack_from(view, pos)
                if not 0 < length <= self._frame_size_max:
                    self.error = self._length_error(length)
                    break
                end = pos + HEADER_SIZE + length
                if end > end_data:
                    break
                frames.append(view[pos + HEADER_SIZE : end].tobytes())
                pos = end
        if self.error is not None:
            buffer.clear()
        elif pos:
            del buffer[:pos]
        return frames

    def _length_error(self, length: int) -> FrameError:
        if length == 0:
            return StreamBroken("zero-length frame")
        return FrameTooLarge(f"frame of {length} bytes exceeds {self._frame_size_max}")
