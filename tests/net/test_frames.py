"""Framing without sockets: bytes in, frames out, errors that name the problem."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaincity.net import (
    DEFAULT_KINDS,
    BadEnvelope,
    Envelope,
    FrameDecoder,
    FrameTooLarge,
    Kind,
    StreamBroken,
    decode_envelope,
    encode_frame,
)
from chaincity.net.frames import FRAME_SIZE_MAX, HEADER_SIZE

envelopes = st.builds(
    Envelope,
    chain_id=st.sampled_from(["main", "energy-1", "health"]),
    kind=st.sampled_from([int(k) for k in Kind if k != Kind.PING]),
    payload=st.binary(max_size=300),
)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@given(st.lists(envelopes, max_size=20), st.lists(st.integers(min_value=0), max_size=30))
def test_any_chunking_gives_the_same_frames(items: list[Envelope], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(e) for e in items)
    decoder = FrameDecoder()
    frames: list[bytes] = []
    for chunk in split_at(stream, cuts):
        frames.extend(decoder.feed(chunk))
    assert decoder.error is None
    assert decoder.buffered_bytes == 0
    assert [decode_envelope(f, DEFAULT_KINDS) for f in frames] == items


@given(st.integers(min_value=1001, max_value=2**32 - 1))
def test_oversized_length_is_refused_before_the_body(length: int) -> None:
    decoder = FrameDecoder(frame_size_max=1000)
    assert decoder.feed(length.to_bytes(HEADER_SIZE, "big")) == []
    assert isinstance(decoder.error, FrameTooLarge)
    assert decoder.buffered_bytes == 0
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"\x00" * 10)


def test_frames_before_a_framing_error_are_kept() -> None:
    good = encode_frame(Envelope("main", Kind.CONSENSUS, b"vote"))
    decoder = FrameDecoder(frame_size_max=1000)
    frames = decoder.feed(good + (5000).to_bytes(4, "big") + b"rest")
    assert len(frames) == 1
    assert isinstance(decoder.error, FrameTooLarge)


def test_zero_length_frame_breaks_the_stream() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"\x00\x00\x00\x00")
    assert isinstance(decoder.error, StreamBroken)


def test_decoder_limit_is_bounded() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(frame_size_max=FRAME_SIZE_MAX + 1)


@settings(max_examples=200)
@given(st.binary(max_size=2000))
def test_garbage_gives_frames_or_a_named_error(garbage: bytes) -> None:
    decoder = FrameDecoder(frame_size_max=1 << 16)
    frames = decoder.feed(garbage)
    for frame in frames:
        try:
            decode_envelope(frame, DEFAULT_KINDS)
        except BadEnvelope as exc:
            assert str(exc)
    assert decoder.buffered_bytes <= max(len(garbage), 0)


def test_bad_envelopes_are_named() -> None:
    with pytest.raises(BadEnvelope, match="malformed"):
        decode_envelope(b"\x93\xa4main", DEFAULT_KINDS)
    with pytest.raises(BadEnvelope, match="unknown kind 999"):
        decode_envelope(encode_frame(Envelope("main", 999, b""))[4:], DEFAULT_KINDS)
    with pytest.raises(BadEnvelope, match="exceeds"):
        frame = encode_frame(Envelope("main", Kind.SYNC_REQUEST, b"x" * 5000))[4:]
        decode_envelope(frame, DEFAULT_KINDS)
    with pytest.raises(BadEnvelope, match="malformed"):
        decode_envelope(encode_frame(Envelope("Not A Chain", Kind.CONSENSUS, b""))[4:], {})


def test_non_canonical_envelope_is_refused() -> None:
    body = encode_frame(Envelope("main", Kind.CONSENSUS, b""))[4:]
    # kind 10 as a 2-byte uint instead of a fixint: same value, other bytes
    non_canonical = body.replace(b"\x0a\xc4", b"\xcc\x0a\xc4")
    assert non_canonical != body
    with pytest.raises(BadEnvelope, match="non-canonical"):
        decode_envelope(non_canonical, DEFAULT_KINDS)
