"""Store engines (cdp_core/store/engine.py): the SQLite settings every connection gets."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cdp_core.store.engine import make_engine


def _settings(engine_url: str, names: list[str]) -> list[dict[str, object]]:
    engine = make_engine(engine_url)
    try:
        # two connections open at once: the pool's second one must be set up the same way
        with engine.connect() as first, engine.connect() as second:
            return [
                {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in names} for conn in (first, second)
            ]
    finally:
        engine.dispose()


def test_every_sqlite_connection_gets_the_store_settings(tmp_path: Path) -> None:
    expected = {
        "page_size": 16384,  # a new store: 16 KiB pages
        "journal_mode": "wal",  # readers work while a sync writes
        "synchronous": 1,  # NORMAL
        "foreign_keys": 1,
        "cache_size": -65536,  # 64 MiB
        "temp_store": 2,  # MEMORY
        "wal_autocheckpoint": 16384,  # pages: 256 MiB of WAL before a checkpoint
        "journal_size_limit": 64 * 2**20,
    }
    url = f"sqlite:///{tmp_path}/nested/store.sqlite"  # the folder is made on the way
    assert _settings(url, list(expected)) == [expected, expected]


def test_a_store_made_with_4_kib_pages_keeps_them_and_checkpoints_at_256_mib(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)  # as stores were made before 16 KiB pages: SQLite's default page size
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t (x INTEGER)")
    con.commit()
    assert con.execute("PRAGMA page_size").fetchone()[0] == 4096
    con.close()
    expected = {"page_size": 4096, "journal_mode": "wal", "wal_autocheckpoint": 65536}
    assert _settings(f"sqlite:///{path}", list(expected)) == [expected, expected]
