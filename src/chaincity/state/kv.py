"""The storage engine interface, and its default engine on LMDB.

Everything the state and the ledger keep goes through this small interface:
named tables of ordered byte keys, read transactions and one write
transaction at a time that commits atomically. Another engine (RocksDB, a SQL
database) implements the same four classes and nothing above changes.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Any

import lmdb

MAP_SIZE_DEFAULT = 64 * 1024**3  # address space, not disk: LMDB files grow as written
TABLES_MAX = 1024
READERS_MAX = 126


class StorageError(Exception):
    """The storage engine failed (disk full, map full, unreadable files)."""


class ReadTxn(ABC):
    """A consistent snapshot of every table."""

    @abstractmethod
    def get(self, table: str, key: bytes) -> bytes | None: ...

    @abstractmethod
    def seek(self, table: str, key: bytes) -> tuple[bytes, bytes] | None:
        """The first entry whose key is >= ``key``, or None."""

    @abstractmethod
    def scan(self, table: str, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Entries from ``start`` in key order; the caller bounds how many it takes."""

    def getter(self, table: str) -> Callable[[bytes], bytes | None]:
        """``get`` bound to ``table``, for loops that read many keys of one table (an
        engine may return a callable with no Python frame per call)."""
        return partial(self.get, table)

    def keys_from(self, table: str, start: bytes, count: int) -> list[bytes]:
        """The first ``count`` keys at ``start`` or after, in order (fewer at the end)."""
        return [key for key, _value in islice(self.scan(table, start), count)]

    def keys_between(self, table: str, start: bytes, stop: bytes) -> list[bytes]:
        """The keys ``start <= key < stop``, in order (the caller bounds the range)."""
        keys: list[bytes] = []
        for key, _value in self.scan(table, start):
            if key >= stop:
                break
            keys.append(key)
        return keys

    def items_between(self, table: str, start: bytes, stop: bytes) -> list[tuple[bytes, bytes]]:
        """The entries ``start <= key < stop``, in order (the caller bounds the range)."""
        items: list[tuple[bytes, bytes]] = []
        for key, value in self.scan(table, start):
            if key >= stop:
                break
            items.append((key, value))
        return items


class WriteTxn(ReadTxn):
    @abstractmethod
    def put(self, table: str, key: bytes, value: bytes) -> None: ...

    @abstractmethod
    def delete(self, table: str, key: bytes) -> None: ...

    def put_many(
        self, table: str, items: Iterable[tuple[bytes, bytes]], *, append: bool = False
    ) -> None:
        """Put every item; ``append`` promises the keys come in increasing order and above
        every key in the table (an engine may store them faster; a broken promise raises
        StorageError)."""
        for key, value in items:
            self.put(table, key, value)

    def delete_many(self, table: str, keys: Iterable[bytes]) -> None:
        for key in keys:
            self.delete(table, key)

    def delete_between(self, table: str, start: bytes, stop: bytes) -> int:
        """Delete the keys ``start <= key < stop``; returns how many there were."""
        keys = self.keys_between(table, start, stop)
        self.delete_many(table, keys)
        return len(keys)


class KVStore(ABC):
    @abstractmethod
    def open_tables(self, names: Sequence[str]) -> None:
        """Create (if needed) the named tables; must precede their use."""

    @abstractmethod
    def read(self) -> AbstractContextManager[ReadTxn]:
        """A context manager giving a ReadTxn."""

    @abstractmethod
    def write(self) -> AbstractContextManager[WriteTxn]:
        """A context manager giving a WriteTxn; commits on normal exit, aborts on error."""

    def background_writer(self) -> BackgroundWriter:
        """A writer whose commits finish while the caller goes on (see BackgroundWriter);
        an engine without one commits before ``transaction`` returns."""
        return BackgroundWriter(self)

    @abstractmethod
    def close(self) -> None: ...


class BackgroundWriter:
    """Write transactions whose commit (and its fsync) runs while the caller goes on.

    ``with writer.transaction() as txn:`` is used as ``store.write()`` is; on a normal
    exit the commit starts, and :meth:`wait` returns once it is durable, or raises
    StorageError if it failed. Nothing written is acknowledged before :meth:`wait`
    returns. The next ``transaction`` waits for the commit before it. This one, for
    engines with nothing better, commits before ``transaction`` returns."""

    def __init__(self, store: KVStore) -> None:
        self._store = store

    def transaction(self) -> AbstractContextManager[WriteTxn]:
        return self._store.write()

    def wait(self) -> None:
        """Return once the last transaction's commit is durable (raises if it failed)."""

    def close(self) -> None:
        """Wait for the last commit (its failure is not raised) and release the writer."""


@dataclass(frozen=True, slots=True)
class LmdbConfig:
    path: str
    durable: bool = True  # fsync each commit; tests may turn it off
    map_size_bytes: int = MAP_SIZE_DEFAULT
    readonly: bool = False


class _LmdbRead(ReadTxn):
    __slots__ = ("_cursors", "_dbs", "_txn")

    def __init__(self, txn: Any, dbs: dict[str, Any]) -> None:
        self._txn = txn
        self._dbs = dbs
        # One cursor per table serves every seek: opening one per seek costs more than
        # the seek itself when an update looks up thousands of keys.
        self._cursors: dict[str, Any] = {}

    def _db(self, table: str) -> Any:
        db = self._dbs.get(table)
        if db is None:
            raise StorageError(f"table {table!r} is not open")
        return db

    def get(self, table: str, key: bytes) -> bytes | None:
        value: bytes | None = self._txn.get(key, db=self._db(table))
        return value

    def getter(self, table: str) -> Callable[[bytes], bytes | None]:
        getter: Callable[[bytes], bytes | None] = partial(self._txn.get, db=self._db(table))
        return getter

    def seek(self, table: str, key: bytes) -> tuple[bytes, bytes] | None:
        cursor = self._cursors.get(table)
        if cursor is None:
            cursor = self._cursors[table] = self._txn.cursor(db=self._db(table))
        if not cursor.set_range(key):
            return None
        return bytes(cursor.key()), bytes(cursor.value())

    def scan(self, table: str, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        with self._txn.cursor(db=self._db(table)) as cursor:
            if not cursor.set_range(start):
                return
            for key, value in cursor:
                yield bytes(key), bytes(value)

    def keys_from(self, table: str, start: bytes, count: int) -> list[bytes]:
        with self._txn.cursor(db=self._db(table)) as cursor:
            if not cursor.set_range(start):
                return []
            return list(islice(cursor.iternext(keys=True, values=False), count))

    def keys_between(self, table: str, start: bytes, stop: bytes) -> list[bytes]:
        keys: list[bytes] = []
        with self._txn.cursor(db=self._db(table)) as cursor:
            if not cursor.set_range(start):
                return keys
            for key in cursor.iternext(keys=True, values=False):
                if key >= stop:
                    break
                keys.append(key)
        return keys

    def items_between(self, table: str, start: bytes, stop: bytes) -> list[tuple[bytes, bytes]]:
        items: list[tuple[bytes, bytes]] = []
        with self._txn.cursor(db=self._db(table)) as cursor:
            if not cursor.set_range(start):
                return items
            for key, value in cursor:
                if key >= stop:
                    break
                items.append((key, value))
        return items


class _LmdbWrite(_LmdbRead, WriteTxn):
    __slots__ = ()

    def put(self, table: str, key: bytes, value: bytes) -> None:
        self._txn.put(key, value, db=self._db(table))

    def delete(self, table: str, key: bytes) -> None:
        self._txn.delete(key, db=self._db(table))

    def put_many(
        self, table: str, items: Iterable[tuple[bytes, bytes]], *, append: bool = False
    ) -> None:
        with self._txn.cursor(db=self._db(table)) as cursor:
            consumed, added = cursor.putmulti(items, append=append)
        if append and added != consumed:
            raise StorageError(f"keys put to {table!r} are not in order after its last key")

    def delete_many(self, table: str, keys: Iterable[bytes]) -> None:
        delete, db = self._txn.delete, self._db(table)
        for key in keys:
            delete(key, db=db)

    def delete_between(self, table: str, start: bytes, stop: bytes) -> int:
        count = 0
        with self._txn.cursor(db=self._db(table)) as cursor:
            # A cursor's delete moves it to the next key: the range goes in one pass over
            # neighbouring LMDB pages, which are freed whole.
            # LMDB keys are never empty: an empty key means the cursor ran off the end.
            if not cursor.set_range(start):
                return 0
            while True:
                key = cursor.key()
                if not key or key >= stop or not cursor.delete():
                    break
                count += 1
        return count


class LmdbStore(KVStore):
    """One LMDB environment (a directory). One writer at a time, within one process."""

    def __init__(self, config: LmdbConfig) -> None:
        self._config = config
        self._dbs: dict[str, Any] = {}
        if not config.readonly:
            os.makedirs(config.path, exist_ok=True)
        try:
            self._env = lmdb.open(
                config.path,
                map_size=config.map_size_bytes,
                max_dbs=TABLES_MAX,
                max_readers=READERS_MAX,
                sync=config.durable,
                metasync=config.durable,
                readonly=config.readonly,
                subdir=True,
                create=not config.readonly,
                readahead=False,
            )
        except lmdb.Error as exc:
            raise StorageError(f"cannot open LMDB at {config.path}: {exc}") from None

    def open_tables(self, names: Sequence[str]) -> None:
        try:
            for name in names:
                if name not in self._dbs:
                    self._dbs[name] = self._env.open_db(
                        name.encode(), create=not self._config.readonly
                    )
        except lmdb.Error as exc:
            raise StorageError(f"cannot open tables: {exc}") from None

    @contextmanager
    def read(self) -> Iterator[ReadTxn]:
        try:
            txn = self._env.begin(buffers=False)
        except lmdb.Error as exc:
            raise StorageError(str(exc)) from None
        try:
            yield _LmdbRead(txn, self._dbs)
        finally:
            txn.abort()

    def write(self) -> AbstractContextManager[WriteTxn]:
        if self._config.readonly:
            raise StorageError("store is open read-only")
        return _write_transaction(self._env, self._dbs, _call, _commit)

    def background_writer(self) -> BackgroundWriter:
        return _LmdbBackgroundWriter(self, self._env, self._dbs)

    def close(self) -> None:
        self._env.close()


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


def _commit(txn: Any) -> None:
    try:
        txn.commit()
    except lmdb.Error as exc:
        raise StorageError(f"commit failed: {exc}") from None


@contextmanager
def _write_transaction(
    env: Any, dbs: dict[str, Any], run: Callable[..., Any], commit: Callable[[Any], None]
) -> Iterator[WriteTxn]:
    """A write transaction, begun and aborted through ``run`` (on the caller's thread, or
    on the thread that must own it); on a normal exit ``commit`` takes it."""
    try:
        txn = run(env.begin, write=True, buffers=False)
    except lmdb.Error as exc:
        raise StorageError(str(exc)) from None
    try:
        yield _LmdbWrite(txn, dbs)
    except lmdb.Error as exc:
        run(txn.abort)
        raise StorageError(f"write failed: {exc}") from None
    except BaseException:
        run(txn.abort)
        raise
    commit(txn)


class _LmdbBackgroundWriter(BackgroundWriter):
    """LMDB ties a write transaction to the thread that began it (its writer lock), so
    one thread of this writer's own begins and commits every transaction; the caller's
    thread writes in between. LMDB's commit releases the interpreter lock for its
    writes and fsync, so the caller's Python runs meanwhile."""

    def __init__(self, store: LmdbStore, env: Any, dbs: dict[str, Any]) -> None:
        super().__init__(store)
        self._env = env
        self._dbs = dbs
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="chaincity-commit")
        self._committing: Future[None] | None = None

    def transaction(self) -> AbstractContextManager[WriteTxn]:
        self.wait()
        return _write_transaction(self._env, self._dbs, self._on_thread, self._start_commit)

    def _on_thread(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._thread.submit(fn, *args, **kwargs).result()

    def _start_commit(self, txn: Any) -> None:
        self._committing = self._thread.submit(txn.commit)

    def wait(self) -> None:
        committing, self._committing = self._committing, None
        if committing is None:
            return
        try:
            committing.result()
        except lmdb.Error as exc:
            raise StorageError(f"commit failed: {exc}") from None

    def close(self) -> None:
        try:
            self.wait()
        except StorageError:
            pass  # whoever waits for it is told; closing only releases the thread
        finally:
            self._thread.shutdown(wait=True)
