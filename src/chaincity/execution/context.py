"""What a contract method sees: a context, and nothing else.

The context gives the sender's certified identity, the block's height and time,
the contract's own namespace of the state, and an event emitter. Every access
is metered: a method that runs out of steps fails, and its writes are undone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from chaincity.codec import CodecError, decode_value, encode_value
from chaincity.types.block import Event
from chaincity.types.primitives import EVENT_DATA_SIZE_MAX, EVENTS_MAX, NAME_SIZE_MAX

STATE_KEY_SIZE_MAX = 192
STATE_VALUE_SIZE_MAX = 64 * 1024

# Step prices: a fixed cost per operation plus one step per 32 bytes moved.
STEP_CALL = 100
STEP_READ = 20
STEP_WRITE = 50
STEP_EVENT = 30
BYTES_PER_STEP = 32


class ContractError(Exception):
    """The transaction is invalid for the contract: a failed receipt with this message."""


class OutOfSteps(ContractError):
    """The transaction used its whole step budget."""


class KeyValueStore(Protocol):
    """One contract's namespace of the state (what the state layer hands out)."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class Sender:
    subject: str
    org: str
    roles: tuple[str, ...]
    public_key: bytes

    def has_role(self, role: str) -> bool:
        return role in self.roles


class Meter:
    """Counts steps against a budget; raises OutOfSteps when it is spent."""

    __slots__ = ("budget", "used")

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0

    def charge(self, steps: int) -> None:
        self.used += steps
        if self.used > self.budget:
            self.used = self.budget
            raise OutOfSteps(f"out of steps (budget {self.budget})")


def _size_steps(size: int) -> int:
    return (size + BYTES_PER_STEP - 1) // BYTES_PER_STEP


class ContractState:
    """Metered access to a contract's namespace; values are canonical plain values."""

    __slots__ = ("_meter", "_store")

    def __init__(self, store: KeyValueStore, meter: Meter) -> None:
        self._store = store
        self._meter = meter

    def get(self, key: str) -> Any:
        raw = self._get_raw(key)
        if raw is None:
            return None
        try:
            return decode_value(raw)
        except CodecError:
            raise ContractError("stored value is not a canonical value") from None

    def has(self, key: str) -> bool:
        return self._get_raw(key) is not None

    def put(self, key: str, value: Any) -> None:
        k = _check_key(key)
        try:
            raw = encode_value(value)
        except CodecError as exc:
            raise ContractError(f"value not storable: {exc}") from None
        if len(raw) > STATE_VALUE_SIZE_MAX:
            raise ContractError(f"value larger than {STATE_VALUE_SIZE_MAX} bytes")
        self._meter.charge(STEP_WRITE + _size_steps(len(k) + len(raw)))
        self._store.put(k, raw)

    def delete(self, key: str) -> None:
        k = _check_key(key)
        self._meter.charge(STEP_WRITE + _size_steps(len(k)))
        self._store.delete(k)

    def _get_raw(self, key: str) -> bytes | None:
        k = _check_key(key)
        self._meter.charge(STEP_READ + _size_steps(len(k)))
        raw = self._store.get(k)
        if raw is not None:
            self._meter.charge(_size_steps(len(raw)))
        return raw


def _check_key(key: str) -> bytes:
    if not isinstance(key, str):
        raise ContractError("state keys are text")
    k = key.encode()
    if not 0 < len(k) <= STATE_KEY_SIZE_MAX:
        raise ContractError(f"state key must be 1..{STATE_KEY_SIZE_MAX} bytes")
    return k


class Context:
    """The only door from a contract method to the world."""

    __slots__ = (
        "_events",
        "block_time_ms",
        "contract",
        "height",
        "meter",
        "sender",
        "state",
        "tx_id",
    )

    def __init__(
        self,
        *,
        contract: str,
        sender: Sender,
        height: int,
        block_time_ms: int,
        tx_id: bytes,
        store: KeyValueStore,
        meter: Meter,
    ) -> None:
        self.contract = contract
        self.sender = sender
        self.height = height
        self.block_time_ms = block_time_ms
        self.tx_id = tx_id
        self.meter = meter
        self.state = ContractState(store, meter)
        self._events: list[Event] = []

    def emit(self, name: str, data: Any) -> None:
        if not 0 < len(name) <= NAME_SIZE_MAX:
            raise ContractError("event name must be 1..64 characters")
        if len(self._events) >= EVENTS_MAX:
            raise ContractError(f"more than {EVENTS_MAX} events")
        try:
            raw = encode_value(data)
        except CodecError as exc:
            raise ContractError(f"event data not encodable: {exc}") from None
        if len(raw) > EVENT_DATA_SIZE_MAX:
            raise ContractError(f"event data larger than {EVENT_DATA_SIZE_MAX} bytes")
        self.meter.charge(STEP_EVENT + _size_steps(len(raw)))
        self._events.append(Event(self.contract, name, raw))

    @property
    def events(self) -> tuple[Event, ...]:
        return tuple(self._events)
