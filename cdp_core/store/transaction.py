"""Write transactions that hold the database's write lock from their first statement.

SQLite in WAL mode gives a transaction its read snapshot at its first read and the write
lock at its first write. If another connection commits in between (the lease heartbeat
renewing, in its own transaction), the first write cannot be applied to a snapshot that is
no longer the newest: SQLite refuses it at once with SQLITE_BUSY_SNAPSHOT ("database is
locked"), whatever the busy timeout, and the whole batch fails. :func:`write_transaction`
starts the transaction with ``BEGIN IMMEDIATE`` instead: the write lock is taken before the
first read (waiting up to the engine's busy timeout for another writer to finish), so
nothing can commit between the transaction's reads and its writes. Other writers, the
heartbeat among them, wait for its commit the same way.

PostgreSQL needs none of this (row locks; a concurrent commit never fails a later write of
a transaction that does not touch the same rows): a plain ``BEGIN``. But there two writers can
then run side by side, each deciding from what it read before the other committed. A plugin whose
writers must not (the profile store: two writers could each found a profile for the same person)
names a ``lock``: on PostgreSQL the transaction first takes a transaction-scoped advisory lock of
that name, so writers naming the same lock run one at a time, as every writer does on SQLite.

Use it for every transaction that may read before it writes. (The sqlite3 module's
implicit transactions start only at the first INSERT/UPDATE/DELETE, so a read before it
runs outside the transaction; but the store's write path fills temporary key tables first,
and that implicit ``BEGIN`` is deferred: the reads that follow get a snapshot, not the lock.)
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator

from sqlalchemy import Connection, Engine, text


@contextlib.contextmanager
def write_transaction(
    engine: Engine, *, spill: bool = False, erase: bool = False, lock: str | None = None
) -> Iterator[Connection]:
    """A connection in a transaction that commits when the block ends without error, else rolls back.

    On SQLite the transaction is ``BEGIN IMMEDIATE``: it holds the write lock from its start.

    :param spill: the transaction's statements materialize large intermediate results (a refresh of
        every profile's computed traits): on SQLite their temporary data goes to temporary files for
        its duration (``temp_store=FILE``), not memory as the store's connections keep it for the
        write path's small key tables. Measured in bench/segments at 1,000,000 person records: a
        refresh of 20 computed traits and 10 segments peaked at 1,056 MB RSS in memory, 315 MB with
        files, in the same time (309 s and 297 s).
    :param erase: what the transaction deletes must not stay readable in the file: on SQLite it runs
        with ``secure_delete`` on (deleted content is overwritten with zeros), commit included. The
        old content may still be in the WAL: checkpoint it afterwards (a privacy forget does).
    :param lock: on PostgreSQL, the name of an advisory lock the transaction holds from its start to
        its end (:func:`advisory_key`): transactions naming the same lock run one at a time. SQLite
        needs none (``BEGIN IMMEDIATE`` already admits one writer at a time).
    """
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            with conn.begin():
                if lock is not None:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(lock)})
                yield conn
            return
        if spill:
            conn.exec_driver_sql("PRAGMA temp_store=FILE")
        secure = bool(conn.exec_driver_sql("PRAGMA secure_delete").scalar()) if erase else False
        if erase:
            conn.exec_driver_sql("PRAGMA secure_delete=ON")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        finally:
            if spill:
                conn.exec_driver_sql("PRAGMA temp_store=MEMORY")
            if erase and not secure:
                conn.exec_driver_sql("PRAGMA secure_delete=OFF")


def advisory_key(lock: str) -> int:
    """The PostgreSQL advisory lock key of a lock name (a CRC-32: stable across processes and releases)."""
    return zlib.crc32(lock.encode())
