"""The storage interface's ordered bulk put on LMDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaincity.state import LmdbConfig, LmdbStore, StorageError


def test_append_puts_keys_in_order_and_refuses_keys_out_of_order(tmp_path: Path) -> None:
    store = LmdbStore(LmdbConfig(str(tmp_path / "db"), durable=False))
    store.open_tables(["t"])
    with store.write() as txn:
        txn.put_many("t", [(b"b", b"1"), (b"c", b"2")], append=True)
    for bad in ([(b"d", b"3"), (b"a", b"4")], [(b"c", b"5")]):
        with pytest.raises(StorageError), store.write() as txn:
            txn.put_many("t", bad, append=True)
    with store.read() as txn:
        # A refused append wrote nothing, not even the keys before the bad one.
        assert list(txn.scan("t")) == [(b"b", b"1"), (b"c", b"2")]
    store.close()
