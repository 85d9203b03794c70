"""Canonical encoding: the same value always gives the same bytes.

Messages are msgspec Structs encoded as MessagePack arrays (``array_like``).
Rules that make the bytes canonical, on every machine:

- no floats anywhere, and no maps in message structs; free-form values (a
  transaction's arguments) may hold maps, but only with text keys in sorted
  order (see :func:`encode_value`);
- every integer, byte string, text and list field has a bound (declared on the
  struct with ``msgspec.Meta``), checked on decode;
- decoding rejects trailing bytes, wrong types, out-of-bound fields, and any
  encoding that is not the one :func:`encode` would produce (decode, re-encode,
  compare), so one value has exactly one accepted encoding.

Hashes and signatures are taken over canonical bytes with a domain tag
(:class:`Tag`), so a signature for one kind of object is never valid for another.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

MESSAGE_SIZE_MAX = 16 * 1024 * 1024
VALUE_DEPTH_MAX = 16
VALUE_INT_MIN = -(2**63)
VALUE_INT_MAX = 2**63 - 1


class CodecError(ValueError):
    """Bytes that are not the canonical encoding of a valid value."""


class Tag:
    """Domain tags for hashes and signatures; one per kind of object."""

    TX = b"chaincity/tx/v1"
    BLOCK = b"chaincity/block/v1"
    PAYLOAD = b"chaincity/payload/v1"
    VOTE = b"chaincity/vote/v1"
    TIMEOUT = b"chaincity/timeout/v1"
    PROPOSAL = b"chaincity/proposal/v1"
    CERT = b"chaincity/cert/v1"
    RECEIPT = b"chaincity/receipt/v1"
    RECEIPTS = b"chaincity/receipts/v1"
    VALIDATORS = b"chaincity/validators/v1"
    GENESIS = b"chaincity/genesis/v1"
    STATE_LEAF = b"chaincity/state/leaf/v1"
    STATE_NODE = b"chaincity/state/node/v1"
    EPOCH_CHANGE = b"chaincity/epoch/v1"


_encoder = msgspec.msgpack.Encoder()
_value_encoder = msgspec.msgpack.Encoder(order="sorted")
_decoders: dict[Any, msgspec.msgpack.Decoder[Any]] = {}
_value_decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder()


def tagged(tag: bytes, data: bytes) -> bytes:
    """The bytes that are signed for ``data`` under a domain tag (length-prefixed)."""
    return bytes((len(tag),)) + tag + data


def encode(value: msgspec.Struct) -> bytes:
    """The canonical bytes of a message struct."""
    return _encoder.encode(value)


def _decoder_for(typ: type[T]) -> msgspec.msgpack.Decoder[T]:
    dec = _decoders.get(typ)
    if dec is None:
        dec = msgspec.msgpack.Decoder(typ)
        _decoders[typ] = dec
    return dec


def decode(data: bytes, typ: type[T], *, size_max: int = MESSAGE_SIZE_MAX) -> T:
    """Decode canonical bytes into ``typ``; raises CodecError for anything else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError("expected bytes")
    if len(data) > size_max:
        raise CodecError(f"message of {len(data)} bytes exceeds {size_max}")
    try:
        value = _decoder_for(typ).decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise CodecError(str(exc)) from None
    if _encoder.encode(value) != data:
        raise CodecError("non-canonical encoding")
    return value


def encode_value(value: Any) -> bytes:
    """Canonical bytes of a free-form value: None, bool, int, str, bytes, list,
    and maps with text keys (encoded in sorted key order).

    Raises CodecError for floats, non-text keys, out-of-range integers and
    nesting deeper than VALUE_DEPTH_MAX.
    """
    check_value(value)
    return _value_encoder.encode(value)


def decode_value(data: bytes, *, size_max: int = MESSAGE_SIZE_MAX) -> Any:
    """Decode a free-form value, rejecting anything encode_value would not produce."""
    if len(data) > size_max:
        raise CodecError(f"value of {len(data)} bytes exceeds {size_max}")
    try:
        value = _value_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise CodecError(str(exc)) from None
    check_value(value)
    if _value_encoder.encode(value) != data:
        raise CodecError("non-canonical encoding")
    return value


_SCALARS = frozenset({type(None), bool, str, bytes})


def check_value(value: Any, depth: int = 0) -> None:
    """Raise CodecError unless ``value`` is a plain value encode_value accepts."""
    # Exact type checks: this runs on every contract read and write.
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is int:
        if not VALUE_INT_MIN <= value <= VALUE_INT_MAX:
            raise CodecError("integer out of range")
        return
    if depth >= VALUE_DEPTH_MAX:
        raise CodecError(f"value nested deeper than {VALUE_DEPTH_MAX}")
    if kind is list or kind is tuple:
        for item in value:
            if type(item) not in _SCALARS:
                check_value(item, depth + 1)
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise CodecError("map keys must be text")
            if type(item) not in _SCALARS:
                check_value(item, depth + 1)
        return
    raise CodecError(f"type {kind.__name__} is not allowed in a canonical value")


__all__ = [
    "MESSAGE_SIZE_MAX",
    "CodecError",
    "Tag",
    "check_value",
    "decode",
    "decode_value",
    "encode",
    "encode_value",
    "tagged",
]
