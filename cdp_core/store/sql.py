"""The one place that builds ``INSERT ... ON CONFLICT`` for both databases.

SQLite and PostgreSQL share the upsert syntax; SQLAlchemy's dialect-specific
``insert`` constructs give it for Core statements (:func:`upsert_statement`,
:func:`upsert`), and :func:`on_conflict_sql` writes the same clause as text for the
driver-level statements of the profile store's hot path, which skips SQLAlchemy's
per-value processing. Every writer builds its upserts here, so the conflict target,
the ``excluded`` row and the do-nothing case mean the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert


def insert_for(dialect: str, table: Table) -> Any:
    """The dialect's ``INSERT`` construct for ``table`` (the one with ``on_conflict_*``)."""
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise ValueError(f"unsupported store database {dialect!r} (SQLite or PostgreSQL)")


def upsert_statement(
    dialect: str,
    table: Table,
    keys: Sequence[str],
    update: Sequence[str],
    *,
    where: ColumnElement[bool] | Callable[[Any], ColumnElement[bool]] | None = None,
    select: Any = None,
    columns: Sequence[str] | None = None,
) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET c = excluded.c`` for ``update`` (``DO NOTHING`` if empty).

    :param where: update only the conflicting rows this holds for; a function of the new row
        (``excluded``) for a condition that compares with it.
    :param select: insert the rows of this SELECT (with ``columns``) instead of bound values.
    """
    stmt = insert_for(dialect, table)
    if select is not None:
        stmt = stmt.from_select(list(columns or ()), select)
    if not update:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    # excluded[c], not getattr: a column named like a collection method ("items") must not resolve to it
    condition = where(stmt.excluded) if callable(where) else where
    return stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: stmt.excluded[c] for c in update}, where=condition
    )


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    update: Sequence[str] | None = None,
) -> None:
    """:func:`upsert_statement` for a whole batch of rows in one statement.

    :param update: columns to overwrite on conflict; default all non-key columns;
        empty means ``DO NOTHING``.
    """
    if not rows:
        return
    columns = list(update) if update is not None else [c for c in rows[0] if c not in keys]
    conn.execute(upsert_statement(conn.dialect.name, table, keys, columns), list(rows))


def on_conflict_sql(keys: Sequence[str], update: Sequence[str], assign: Mapping[str, str] | None = None) -> str:
    """The ``ON CONFLICT`` clause as text, for driver-level statements: the same meaning as :func:`upsert_statement`.

    :param assign: extra ``column -> SQL expression`` assignments (``excluded.x`` is the new row).
    """
    sets = [f'"{c}" = excluded."{c}"' for c in update] + [f'"{c}" = {e}' for c, e in (assign or {}).items()]
    conflict = ", ".join(f'"{k}"' for k in keys)
    return f"ON CONFLICT ({conflict}) " + (f"DO UPDATE SET {', '.join(sets)}" if sets else "DO NOTHING")
