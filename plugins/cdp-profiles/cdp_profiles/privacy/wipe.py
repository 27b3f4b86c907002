"""After a forget commits: making the deleted bytes unreadable in the database's files (docs/privacy.md).

- SQLite: the forget's transaction ran with ``secure_delete`` on
  (:func:`cdp_core.store.transaction.write_transaction` with ``erase=True``), so the
  pages it changed hold zeros where the person was. The WAL still holds the earlier
  versions of those pages (every write since the last checkpoint); ``PRAGMA
  wal_checkpoint(TRUNCATE)`` copies the new pages into the database file and empties
  the WAL. A reader still reading an older snapshot keeps the checkpoint from finishing:
  that is reported (``wal`` is ``busy``), and the next checkpoint completes it.
- PostgreSQL: the rows are gone for every reader at commit; their dead versions stay in
  the tables' files until VACUUM reclaims them, so the touched tables are vacuumed (a
  plain VACUUM: it takes no lock that stops a sync). What it cannot reach is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError


def after_commit(engine: Engine, tables: Sequence[str]) -> dict[str, Any]:
    """Finish the erasure of a committed forget that changed ``tables``; what was done."""
    if engine.dialect.name == "sqlite":
        return checkpoint(engine)
    return vacuum(engine, tables)


def checkpoint(engine: Engine) -> dict[str, Any]:
    """Copy the WAL into the database file and truncate it (SQLite)."""
    with engine.connect() as conn:
        busy, log_pages, copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        conn.commit()
    if busy:
        return {
            "database": "sqlite", "secure_delete": True, "wal": "busy",
            "problem": f"another connection is reading an older snapshot: {copied} of {log_pages} WAL pages were "
            "copied and the WAL still holds earlier versions of the deleted rows until the next checkpoint "
            "(run the forget's checkpoint again with `PRAGMA wal_checkpoint(TRUNCATE)` once it is done)",
        }  # fmt: skip
    return {"database": "sqlite", "secure_delete": True, "wal": "emptied"}


def vacuum(engine: Engine, tables: Sequence[str]) -> dict[str, Any]:
    """VACUUM ``tables`` (PostgreSQL): their dead row versions are reclaimed."""
    if not tables:
        return {"database": engine.dialect.name, "vacuumed": []}
    quote = engine.dialect.identifier_preparer.quote
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("VACUUM " + ", ".join(quote(t) for t in sorted(tables)))
    except SQLAlchemyError as exc:
        problem = (str(getattr(exc, "orig", None) or exc).splitlines() or [""])[0]
        return {"database": engine.dialect.name, "vacuumed": [], "problem": f"VACUUM failed: {problem}"}
    return {"database": engine.dialect.name, "vacuumed": sorted(tables)}
