"""Send queue policy: reliable frames refused when full, lossy frames drop the oldest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaincity.net import Delivery, LaneLimits, Outbox


def make(frames_max: int = 3, bytes_max: int = 100) -> Outbox:
    return Outbox(LaneLimits(frames_max, bytes_max), LaneLimits(frames_max, bytes_max))


def test_reliable_is_refused_never_dropped() -> None:
    box = make()
    assert all(box.push(bytes([i]), Delivery.RELIABLE) for i in range(3))
    assert not box.push(b"x", Delivery.RELIABLE)
    assert (box.refused, box.dropped) == (1, 0)
    assert box.pop_batch(1000) == [b"\x00", b"\x01", b"\x02"]


def test_lossy_drops_the_oldest() -> None:
    box = make()
    for i in range(5):
        assert box.push(bytes([i]), Delivery.LOSSY)
    assert box.dropped == 2
    assert box.pop_batch(1000) == [b"\x02", b"\x03", b"\x04"]


def test_byte_limit_applies() -> None:
    box = make(frames_max=100, bytes_max=10)
    assert box.push(b"x" * 6, Delivery.RELIABLE)
    assert not box.push(b"y" * 6, Delivery.RELIABLE)
    assert not box.push(b"z" * 11, Delivery.LOSSY)
    assert box.push(b"a" * 6, Delivery.LOSSY)
    assert box.push(b"b" * 6, Delivery.LOSSY)
    assert box.dropped == 1
    assert box.size_bytes == 12


def test_reliable_goes_first_and_batches_are_bounded() -> None:
    box = make(frames_max=10, bytes_max=1000)
    box.push(b"g1", Delivery.LOSSY)
    box.push(b"r1" * 10, Delivery.RELIABLE)
    box.push(b"r2" * 10, Delivery.RELIABLE)
    assert box.pop_batch(30) == [b"r1" * 10]
    assert box.pop_batch(1) == [b"r2" * 10]  # at least one frame, whatever its size
    assert box.pop_batch(30) == [b"g1"]
    assert len(box) == 0


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LaneLimits(0, 10)


@given(
    st.lists(
        st.tuples(st.binary(min_size=1, max_size=40), st.sampled_from(list(Delivery))),
        max_size=60,
    )
)
def test_never_over_the_limits(ops: list[tuple[bytes, Delivery]]) -> None:
    box = make(frames_max=4, bytes_max=64)
    accepted_reliable = []
    for frame, delivery in ops:
        ok = box.push(frame, delivery)
        if ok and delivery is Delivery.RELIABLE:
            accepted_reliable.append(frame)
        assert len(box) <= 8
        assert box.size_bytes <= 128
    out = box.pop_batch(10_000)
    # every accepted reliable frame is still there, in order, ahead of lossy ones
    assert out[: len(accepted_reliable)] == accepted_reliable
