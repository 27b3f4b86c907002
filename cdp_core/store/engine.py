"""Engines for the two supported databases: SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

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


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    raise ValueError(f"unsupported store URL scheme {parsed.get_backend_name()!r}: use sqlite:/// or postgresql://")


SQLITE_PRAGMAS = (
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
    # A batch of a large sync dirties pages all over the identity indexes, and SQLite's
    # default checkpoint (every 1,000 pages = 4 MiB of WAL) copied them back into the
    # database after every commit. Checkpointing at 256 MiB copies a page once for several
    # commits (measured: a third less commit time at 300,000 persons, bench/README.md); the
    # WAL is cut back to 64 MiB once a checkpoint has emptied it.
    "PRAGMA wal_autocheckpoint=65536",
    "PRAGMA journal_size_limit=67108864",
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()
