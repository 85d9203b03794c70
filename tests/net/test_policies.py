"""Backoff delays and the duplicate filter."""

from __future__ import annotations

import random

import pytest

from chaincity.net.backoff import Backoff
from chaincity.net.dedup import RecentDigests


class FixedRandom:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def test_backoff_doubles_up_to_the_cap() -> None:
    backoff = Backoff(100, 1000, FixedRandom(0.999999))
    delays = [backoff.next_delay_ms() for _ in range(6)]
    assert delays == [99, 199, 399, 799, 999, 999]
    backoff.reset()
    assert backoff.next_delay_ms() == 99


def test_backoff_jitter_stays_in_the_upper_half() -> None:
    backoff = Backoff(100, 100, random.Random(7))
    delays = {backoff.next_delay_ms() for _ in range(200)}
    assert min(delays) >= 50 and max(delays) < 100
    assert len(delays) > 10


def test_backoff_survives_many_attempts() -> None:
    backoff = Backoff(1, 5000, FixedRandom(0.0))
    for _ in range(10_000):
        delay = backoff.next_delay_ms()
    assert delay == 2500


def test_backoff_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError):
        Backoff(0, 10, FixedRandom(0.5))


def test_recent_digests_forget_the_oldest() -> None:
    seen = RecentDigests(2)
    assert not seen.check_and_add(b"a")
    assert seen.check_and_add(b"a")
    assert not seen.check_and_add(b"b")
    assert not seen.check_and_add(b"c")  # evicts a
    assert not seen.check_and_add(b"a")
    assert len(seen) == 2
