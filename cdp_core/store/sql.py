"""Set-based write helpers shared by every table writer: one statement per batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    update: Sequence[str] | None = None,
) -> None:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` for a whole batch in one statement.

    :param update: columns to overwrite on conflict; default all non-key columns;
        empty means ``DO NOTHING``.
    """
    if not rows:
        return
    dialect = conn.dialect.name
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert  # the store is SQLite or PostgreSQL
    stmt = insert(table)
    columns = list(update) if update is not None else [c for c in rows[0] if c not in keys]
    if columns:
        stmt = stmt.on_conflict_do_update(
            # excluded[c], not getattr: a column named like a collection method ("items") must not resolve to it
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in columns}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    conn.execute(stmt, list(rows))
