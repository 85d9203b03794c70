"""Copy-on-write views: a block executes on an overlay, then it is committed or dropped.

Contracts see only a :class:`Namespace`: every key they use is prefixed with
their own name (length-prefixed, so no name is a prefix of another's keys),
and there is no way to form a key outside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chaincity.state.store import (
    KEY_SIZE_MAX,
    StateError,
    StateUpdate,
    check_key,
    check_value,
)

if TYPE_CHECKING:
    from chaincity.state.store import AuthenticatedState

NAMESPACE_SIZE_MAX = 64
JOURNAL_MAX = 2_000_000  # writes per overlay (a block's worth, with room)
BASE_READS_MAX = 2_000_000  # base lookups remembered per overlay; later ones are not
_MISSING = object()


def namespace_prefix(name: str) -> bytes:
    raw = name.encode() if isinstance(name, str) else b""
    if not 0 < len(raw) <= NAMESPACE_SIZE_MAX:
        raise StateError(f"namespace must be 1..{NAMESPACE_SIZE_MAX} bytes of text")
    return bytes((len(raw),)) + raw


def namespaced_key(namespace: str, key: bytes) -> bytes:
    """The state key of ``key`` in contract ``namespace`` (what proofs are made for)."""
    return _prefixed(namespace_prefix(namespace), key, namespace)


def _prefixed(prefix: bytes, key: bytes, namespace: str) -> bytes:
    if not isinstance(key, bytes) or not 0 < len(key) <= KEY_SIZE_MAX - len(prefix):
        raise StateError(f"key must be 1..{KEY_SIZE_MAX - len(prefix)} bytes in {namespace!r}")
    return prefix + key


class Overlay:
    """Writes over one version (committed, or committing behind); reads fall through to it."""

    def __init__(self, state: AuthenticatedState, base_version: int | None) -> None:
        self._state = state
        self._base = base_version
        self._writes: dict[bytes, bytes | None] = {}
        self._journal: list[tuple[bytes, object]] = []
        # What each key read from the base was found to be: repeated reads, and
        # preparing the update, then need no second lookup. The base never changes.
        self._base_reads: dict[bytes, bytes | None] = {}
        self._prepared: StateUpdate | None = None

    @property
    def base_version(self) -> int | None:
        return self._base

    def namespace(self, contract: str) -> Namespace:
        return Namespace(self, contract)

    def get(self, key: bytes) -> bytes | None:
        if key in self._writes:
            return self._writes[key]
        if self._base is None:
            return None
        reads = self._base_reads
        if key in reads:
            return reads[key]
        found = self._state.read_base(key, self._base)
        if len(reads) < BASE_READS_MAX:
            reads[key] = found
        return found

    def put(self, key: bytes, value: bytes | None) -> None:
        """Write ``value`` at a full state key (None deletes); contracts use namespace()."""
        check_key(key)
        if value is not None:
            check_value(value)
        if len(self._journal) >= JOURNAL_MAX:
            raise StateError(f"more than {JOURNAL_MAX} writes in one overlay")
        self._journal.append((key, self._writes.get(key, _MISSING)))
        self._writes[key] = value
        self._prepared = None

    def checkpoint(self) -> int:
        """A mark to :meth:`revert` to (undoes everything written after it)."""
        return len(self._journal)

    def revert(self, checkpoint: int) -> None:
        if not 0 <= checkpoint <= len(self._journal):
            raise StateError(f"no checkpoint {checkpoint} in this overlay")
        while len(self._journal) > checkpoint:
            key, previous = self._journal.pop()
            if previous is _MISSING:
                del self._writes[key]
            else:
                self._writes[key] = previous  # type: ignore[assignment]
        self._prepared = None

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """Every written key's final value (None: deleted), in key order."""
        return sorted(self._writes.items())

    def prepared(self) -> StateUpdate | None:
        return self._prepared

    def set_prepared(self, update: StateUpdate) -> None:
        self._prepared = update


class Namespace:
    """One contract's keys within an overlay."""

    __slots__ = ("_name", "_overlay", "_prefix")

    def __init__(self, overlay: Overlay, name: str) -> None:
        self._prefix = namespace_prefix(name)  # worked out once, not at every access
        self._overlay = overlay
        self._name = name

    def _full_key(self, key: bytes) -> bytes:
        return _prefixed(self._prefix, key, self._name)

    def get(self, key: bytes) -> bytes | None:
        return self._overlay.get(self._full_key(key))

    def put(self, key: bytes, value: bytes) -> None:
        if not isinstance(value, bytes):
            raise StateError("state values are bytes")
        self._overlay.put(self._full_key(key), value)

    def delete(self, key: bytes) -> None:
        self._overlay.put(self._full_key(key), None)
