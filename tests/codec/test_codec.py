"""Canonical encoding: round trips, and rejection of every non-canonical form."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaincity.codec import (
    CodecError,
    Tag,
    decode,
    decode_value,
    encode,
    encode_value,
    tagged,
)
from chaincity.types.primitives import U64


class Sample(msgspec.Struct, array_like=True, frozen=True):
    height: U64
    name: Annotated[str, msgspec.Meta(max_length=8)]
    blob: Annotated[bytes, msgspec.Meta(max_length=16)]
    items: Annotated[tuple[U64, ...], msgspec.Meta(max_length=4)]


samples = st.builds(
    Sample,
    height=st.integers(0, 2**63 - 1),
    name=st.text(max_size=8),
    blob=st.binary(max_size=16),
    items=st.lists(st.integers(0, 2**63 - 1), max_size=4).map(tuple),
)


@given(samples)
def test_struct_round_trip_is_identity(value: Sample) -> None:
    data = encode(value)
    assert decode(data, Sample) == value
    assert encode(decode(data, Sample)) == data


@given(samples, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_rejected(value: Sample, extra: bytes) -> None:
    with pytest.raises(CodecError):
        decode(encode(value) + extra, Sample)


@given(samples)
def test_every_truncation_is_rejected(value: Sample) -> None:
    data = encode(value)
    for cut in range(len(data)):
        with pytest.raises(CodecError):
            decode(data[:cut], Sample)


def test_non_minimal_integer_encoding_is_rejected() -> None:
    canonical = encode(Sample(1, "a", b"", ()))
    assert canonical[:2] == b"\x94\x01"
    widened = b"\x94\xcd\x00\x01" + canonical[2:]  # 1 as uint16
    assert msgspec.msgpack.decode(widened, type=Sample) == Sample(1, "a", b"", ())
    with pytest.raises(CodecError, match="non-canonical"):
        decode(widened, Sample)


def test_str8_for_short_text_is_rejected() -> None:
    canonical = encode(Sample(1, "a", b"", ()))
    widened = canonical.replace(b"\xa1a", b"\xd9\x01a")
    with pytest.raises(CodecError, match="non-canonical"):
        decode(widened, Sample)


@pytest.mark.parametrize(
    "bad",
    [
        [-1, "a", b"", []],  # negative height
        [2**63, "a", b"", []],  # out of u64
        [1, "a" * 9, b"", []],  # text too long
        [1, "a", b"x" * 17, []],  # bytes too long
        [1, "a", b"", [1, 2, 3, 4, 5]],  # too many items
        [1, 2, b"", []],  # wrong type
        [1.0, "a", b"", []],  # float
        [1, "a", b""],  # missing field
    ],
)
def test_out_of_bounds_and_wrong_types_are_rejected(bad: list[Any]) -> None:
    data = msgspec.msgpack.encode(bad)
    with pytest.raises(CodecError):
        decode(data, Sample)


def test_invalid_utf8_is_rejected() -> None:
    data = encode(Sample(1, "a", b"", ())).replace(b"\xa1a", b"\xa1\xff")
    with pytest.raises(CodecError):
        decode(data, Sample)
    with pytest.raises(CodecError):
        decode_value(b"\xa1\xff")


def test_oversized_input_is_rejected_before_decoding() -> None:
    with pytest.raises(CodecError, match="exceeds"):
        decode(b"\x00" * 100, Sample, size_max=10)


@given(st.binary(max_size=64))
def test_garbage_never_raises_anything_but_codec_error(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        decode(data, Sample)


plain_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=10)
    | st.binary(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(plain_values)
def test_value_round_trip(value: Any) -> None:
    data = encode_value(value)
    assert decode_value(data) == value
    assert encode_value(decode_value(data)) == data


@given(st.dictionaries(st.text(max_size=6), st.integers(0, 9), min_size=2, max_size=6))
def test_map_key_order_does_not_change_bytes(d: dict[str, int]) -> None:
    reversed_d = dict(reversed(list(d.items())))
    assert encode_value(d) == encode_value(reversed_d)


def test_unsorted_map_is_rejected() -> None:
    unsorted = msgspec.msgpack.encode({"b": 1, "a": 2})
    assert unsorted != encode_value({"b": 1, "a": 2})
    with pytest.raises(CodecError, match="non-canonical"):
        decode_value(unsorted)


@pytest.mark.parametrize(
    "value",
    [1.5, {1: "int key"}, 2**63, -(2**63) - 1, {"s": {1, 2}}, [object()]],
)
def test_values_outside_the_canonical_model_are_rejected(value: Any) -> None:
    with pytest.raises(CodecError):
        encode_value(value)


def test_float_in_encoded_value_is_rejected() -> None:
    with pytest.raises(CodecError):
        decode_value(msgspec.msgpack.encode([1, 2.5]))


def test_deep_nesting_is_rejected() -> None:
    deep: Any = 0
    for _ in range(40):
        deep = [deep]
    with pytest.raises(CodecError, match="nested"):
        encode_value(deep)
    with pytest.raises(CodecError):
        decode_value(msgspec.msgpack.encode(deep))


def test_domain_tags_are_distinct_and_length_prefixed() -> None:
    tags = [v for k, v in vars(Tag).items() if not k.startswith("_")]
    assert len(tags) == len(set(tags))
    assert all(t.startswith(b"chaincity/") for t in tags)
    # The length prefix keeps (tag, data) pairs from colliding.
    assert tagged(b"ab", b"c") != tagged(b"a", b"bc")
    assert tagged(Tag.TX, b"x")[0] == len(Tag.TX)
