"""Reconnect delays: exponential backoff with jitter from a random source passed in."""

from __future__ import annotations

from typing import Protocol


class RandomSource(Protocol):
    def random(self) -> float: ...


class Backoff:
    """Delays of initial, 2x, 4x, ... up to a cap, each scaled by a factor in
    [0.5, 1.0) so that peers that lost each other at once do not redial in step."""

    def __init__(self, initial_ms: int, max_ms: int, rng: RandomSource) -> None:
        if not 0 < initial_ms <= max_ms:
            raise ValueError("backoff needs 0 < initial_ms <= max_ms")
        self._initial_ms = initial_ms
        self._max_ms = max_ms
        self._rng = rng
        self.attempts = 0

    def next_delay_ms(self) -> int:
        # The exponent is capped so the integer never grows with the attempt count.
        base = min(self._max_ms, self._initial_ms << min(self.attempts, 32))
        self.attempts += 1
        return max(1, int(base * (0.5 + self._rng.random() / 2)))

    def reset(self) -> None:
        self.attempts = 0
