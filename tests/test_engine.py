"""Store engines (cdp_core/store/engine.py): the SQLite settings every connection gets."""

from __future__ import annotations

from pathlib import Path

from cdp_core.store.engine import make_engine


def test_every_sqlite_connection_gets_the_store_settings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/nested/store.sqlite")  # the folder is made on the way
    try:
        expected = {
            "journal_mode": "wal",  # readers work while a sync writes
            "synchronous": 1,  # NORMAL
            "foreign_keys": 1,
            "cache_size": -65536,  # 64 MiB
            "temp_store": 2,  # MEMORY
            "wal_autocheckpoint": 65536,  # pages: 256 MiB of WAL before a checkpoint
            "journal_size_limit": 64 * 2**20,
        }
        # two connections open at once: the pool's second one must be set up the same way
        with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                got = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in expected}
                assert got == expected
    finally:
        engine.dispose()
