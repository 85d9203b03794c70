"""A writer that commits state versions behind, for the SIGKILL test.

    python pipeline_workload.py DATA_DIR VERSIONS

Prints each version once it is durable (settled), one per line. The changes of each
version are a function of its number (``changes``), so a reader can rebuild what
any version holds.
"""

from __future__ import annotations

import sys

from chaincity.crypto import get_suite
from chaincity.state import AuthenticatedState, LmdbConfig, LmdbStore

SUITE = get_suite("ed25519-sha256")
KEYS = 300
WINDOW = 4
COPY_AFTER_PCT = 100  # copies generations forward often


def changes(version: int) -> list[tuple[bytes, bytes | None]]:
    out: list[tuple[bytes, bytes | None]] = []
    for j in range(1 + version % 40):
        i = (version * 7 + j * 13) % KEYS
        out.append((b"k%d" % i, None if (version + j) % 9 == 0 else b"v%d" % version))
    return sorted(dict(out).items())


def model(version: int) -> dict[bytes, bytes]:
    values: dict[bytes, bytes | None] = {}
    for v in range(version + 1):
        values.update(changes(v))
    return {k: v for k, v in values.items() if v is not None}


def open_state(path: str) -> tuple[LmdbStore, AuthenticatedState]:
    store = LmdbStore(LmdbConfig(path, durable=True, map_size_bytes=2**30))
    state = AuthenticatedState(store, SUITE, window=WINDOW, copy_after_pct=COPY_AFTER_PCT)
    return store, state


def main() -> None:
    path, count = sys.argv[1], int(sys.argv[2])
    _store, state = open_state(path)
    for _ in range(count):
        tip = state.tip_version
        version = 0 if tip is None else tip + 1
        state.commit_behind(state.prepare_changes(tip, changes(version)))
        if state.latest_version is not None:  # settled by the call above: acknowledged
            print(state.latest_version, flush=True)


if __name__ == "__main__":
    main()
