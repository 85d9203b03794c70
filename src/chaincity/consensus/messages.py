"""Decoding consensus messages from untrusted bytes."""

from __future__ import annotations

import msgspec

from chaincity.codec import MESSAGE_SIZE_MAX, CodecError, encode
from chaincity.types.consensus import ConsensusMessage

_decoder: msgspec.msgpack.Decoder[ConsensusMessage] = msgspec.msgpack.Decoder(ConsensusMessage)


def decode_message(data: bytes) -> ConsensusMessage:
    """The message in ``data``; raises CodecError for anything but canonical bytes."""
    if not isinstance(data, bytes) or len(data) > MESSAGE_SIZE_MAX:
        raise CodecError("not a consensus message")
    try:
        msg = _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CodecError(str(exc)) from None
    if encode(msg) != data:
        raise CodecError("non-canonical encoding")
    return msg
