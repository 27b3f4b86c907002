"""Engines for the two supported databases: SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import math
import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3, the driver cdp ships with."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


BUSY_TIMEOUT_ENV = "CDP_STORE_BUSY_TIMEOUT"
"""Seconds a SQLite connection waits for another process's lock before "database is locked" (default 30)."""


def busy_timeout() -> float:
    try:
        return max(0.0, float(os.environ.get(BUSY_TIMEOUT_ENV, "30")))
    except ValueError:
        return 30.0


def make_engine(url: str, *, create_folder: bool = True, **kwargs: Any) -> Engine:
    """An engine for ``url``; ``create_folder=False`` leaves a SQLite file's missing folder missing (read commands)."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if create_folder and parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": busy_timeout()}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    raise ValueError(f"unsupported store URL scheme {parsed.get_backend_name()!r}: use sqlite:/// or postgresql://")


SQLITE_PRAGMAS = (
    # 16 KiB pages (SQLite's default is 4 KiB): the identity indexes are keyed by hashes and
    # ids, so a batch's inserts land on pages all over them; bigger pages mean shallower trees
    # and fewer pages to write per commit (measured: 1.2x end to end at 1,000,000 persons,
    # bench/README.md). Only a new database takes it: an existing store keeps its page size.
    "PRAGMA page_size=16384",
    # WAL lets `cdp runs` read while a sync writes; NORMAL is durable across
    # process crashes in WAL mode, which is the failure a sync must survive.
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    # The identity tables are keyed by hashes and ids: inserts land on random pages. With
    # SQLite's default 2 MiB page cache a large store rereads pages for every batch;
    # 64 MiB keeps the upper levels of every index in memory (bench/README.md).
    "PRAGMA cache_size=-65536",
    # The write path joins through small temporary key tables: keep them off the disk.
    "PRAGMA temp_store=MEMORY",
    # The WAL is cut back to 64 MiB once a checkpoint has emptied it.
    "PRAGMA journal_size_limit=67108864",
    # What a write deletes or rewrites (a record sent again with a new name, a merged profile's
    # row) is overwritten with zeros, not left in the page's free space where a later privacy
    # forget could not reach it. SQLite's own default is off; Debian builds it on, which is what
    # every figure in bench/README.md was measured with, so it costs nothing measured here.
    "PRAGMA secure_delete=ON",
)

WAL_CHECKPOINT_BYTES = 256 * 2**20
"""Checkpoint the WAL into the database file once it holds this much (``wal_autocheckpoint``, in pages).

A batch of a large sync dirties pages all over the identity indexes, and SQLite's default
checkpoint (every 1,000 pages, 4 MiB of WAL at 4 KiB pages) copied them back into the
database after every commit. Checkpointing at 256 MiB copies a page once for several
commits (measured: a third less commit time at 300,000 persons, bench/README.md).
"""


def _has_math_functions() -> bool:
    """Whether this ``sqlite3`` build has SQLite's math functions (3.35+, SQLITE_ENABLE_MATH_FUNCTIONS)."""
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("SELECT exp(0), ln(1)").fetchall()
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()
    return True


SQLITE_MATH = _has_math_functions()


def configure_sqlite(dbapi_connection: Any) -> None:
    """The store's settings on a ``sqlite3`` connection: ``SQLITE_PRAGMAS``, then the checkpoint size.

    A build without SQLite's math functions gets ``exp`` and ``ln`` from Python (deterministic, the
    same C library), so rules that need them (``ewma()``, docs/segments.md) read the same everywhere.
    """
    if not SQLITE_MATH:
        dbapi_connection.create_function("exp", 1, _exp, deterministic=True)
        dbapi_connection.create_function("ln", 1, _ln, deterministic=True)
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        # In pages of this database's size: 16 KiB for a new store, 4 KiB for one made before.
        page_size = cursor.execute("PRAGMA page_size").fetchone()[0]
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_BYTES // page_size}")
    finally:
        cursor.close()


def _exp(x: float | None) -> float | None:
    return None if x is None else math.exp(x)


def _ln(x: float | None) -> float | None:
    return None if x is None or x <= 0 else math.log(x)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    configure_sqlite(dbapi_connection)
