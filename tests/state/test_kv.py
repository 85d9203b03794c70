"""The storage interface on LMDB: ordered bulk puts, range reads and range deletes."""

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


def test_range_reads_and_deletes_take_exactly_the_keys_in_range(tmp_path: Path) -> None:
    store = LmdbStore(LmdbConfig(str(tmp_path / "db"), durable=False))
    store.open_tables(["t", "empty"])
    model = {bytes([a, b]): bytes([b, a]) for a in range(0, 40, 3) for b in range(0, 9, 2)}
    with store.write() as txn:
        txn.put_many("t", sorted(model.items()))
    bounds = [b"", b"\x00", b"\x03\x04", b"\x03\x05", b"\x14", b"\x27\x08", b"\x27\x09", b"\xff"]
    with store.read() as txn:
        for start in bounds:
            for stop in bounds:
                inside = sorted(k for k in model if start <= k < stop)
                assert txn.keys_between("t", start, stop) == inside
                assert txn.items_between("t", start, stop) == [(k, model[k]) for k in inside]
        assert txn.keys_between("empty", b"", b"\xff") == []
        assert txn.items_between("empty", b"", b"\xff") == []
    for start, stop in [
        (b"\x03\x05", b"\x14"),
        (b"\x27\x08", b"\xff"),
        (b"\x14", b"\x03"),
        (b"", b"\x00"),
    ]:
        inside = [k for k in model if start <= k < stop]
        with store.write() as txn:
            assert txn.delete_between("t", start, stop) == len(inside)
            assert txn.delete_between("empty", start, stop) == 0
        for key in inside:
            del model[key]
        with store.read() as txn:
            assert list(txn.scan("t")) == sorted(model.items())
    store.close()
