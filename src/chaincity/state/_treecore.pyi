from collections.abc import Callable, Sequence
from typing import Any

from chaincity.crypto.suite import HashState

def apply(
    changes: Sequence[tuple[bytes, bytes | None]],
    root_version: int | None,
    version: int,
    fetch: Callable[[bytes], bytes | None],
    hash_fn: Callable[[bytes], bytes],
    leaf_prefix: bytes,
    node_prefix: bytes,
    hash_size: int,
    hash_ctor: Callable[[bytes], HashState] | None = None,
    refresh_versions: Sequence[int] = (),
    refreshes: Sequence[bytes] = (),
    cache: dict[bytes, Any] | None = None,
    digest_name: str | None = None,
) -> tuple[bytes, list[tuple[bytes, bytes]], list[bytes]]: ...
def digest(name: str, data: bytes) -> bytes | None: ...
def digests(name: str, items: Sequence[bytes | None]) -> list[bytes | None]: ...
def collect(
    items: Sequence[tuple[bytes, bytes | None]],
    digest_name: str,
    key_max: int,
    value_max: int,
    check_key: Callable[[bytes], None],
    check_value: Callable[[bytes], None],
    state_error: type[Exception],
) -> tuple[list[tuple[bytes, bytes | None]], list[tuple[bytes, bytes | None]]]: ...
def fresh_entries(
    version: int, values: Sequence[tuple[bytes, bytes | None]]
) -> list[tuple[bytes, bytes]]: ...
def merge_newest(
    runs: Sequence[Sequence[tuple[bytes, bytes]]], offset: int
) -> tuple[list[tuple[bytes, bytes]], list[bytes], tuple[bytes, bytes] | None]: ...
def count_prefixes(keys: Sequence[bytes], length: int) -> dict[bytes, int]: ...
def sorted_suffixes(key_lists: Sequence[Sequence[bytes]], offset: int) -> list[bytes]: ...
