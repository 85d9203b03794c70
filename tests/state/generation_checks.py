"""Checks of pruning by generation against the stored trees (used by several tests)."""

from __future__ import annotations

import struct
from collections import Counter

from chaincity.state import AuthenticatedState, LmdbStore
from chaincity.state.kv import ReadTxn
from chaincity.state.tree import Child


def tree_pages(state: AuthenticatedState, txn: ReadTxn, version: int) -> list[bytes]:
    """The node keys of ``version``'s tree (a missing page raises StateCorruption)."""
    found: list[bytes] = []
    todo = [(state.root_ref(txn, version)[1], b"")]
    while todo:
        page_version, path = todo.pop()
        found.append(struct.pack(">Q", page_version) + path)
        for index, slot in enumerate(state.load_page(txn, page_version, path).slots):
            if type(slot) is Child:
                todo.append((slot.version, path + bytes((index,))))
    return found


def check_generations(state: AuthenticatedState, store: LmdbStore) -> None:
    """Every retained tree is whole; each counted generation's live count is what the
    latest tree reaches of it; every page stored belongs to a counted generation, to
    one that dies when the oldest retained version moves on, or to pages from before
    counting that a retained tree still reaches."""
    latest, oldest = state.latest_version, state.oldest_version
    assert latest is not None and oldest is not None
    first = state.generations.first
    with store.read() as txn:
        reached: set[bytes] = set()
        for version in range(oldest, latest + 1):
            reached.update(tree_pages(state, txn, version))
        live = Counter(struct.unpack_from(">Q", key)[0] for key in tree_pages(state, txn, latest))
        counts = state.generations.counts(txn)
        written_total, live_total = state.generations.totals(txn)
        dying = [struct.unpack(">QQ", key) for key, _raw in txn.scan(state.tables["dying"])]
        stored = [key for key, _raw in txn.scan(state.tables["nodes"])]
    assert {g: n for g, n in live.items() if g >= first} == {
        g: counted[0] for g, counted in counts.items()
    }
    assert live_total == sum(live for live, _written in counts.values())
    assert written_total >= sum(written for _live, written in counts.values())
    assert all(died > oldest for died, _generation in dying), (oldest, dying)
    kept = set(counts) | {generation for _died, generation in dying}
    for key in stored:
        version = struct.unpack_from(">Q", key)[0]
        if version >= first:
            assert version in kept, (version, sorted(kept))
        else:
            assert key in reached, key.hex()
