"""Bulk statements straight through the database driver, for the store's hot write path.

SQLAlchemy Core processes every bound value of every row in Python; for a batch
of 10,000 records and a dozen tables that overhead dominated the write (measured:
over half of the time). Here rows go to the driver's ``executemany`` as plain
tuples, values already in the form SQLAlchemy itself would have stored, so the
ORM and Core readers of the same tables see no difference:

- SQLite: JSON as text, datetimes as naive-UTC ``YYYY-MM-DD HH:MM:SS.ffffff``,
  decimals as text (NUMERIC affinity turns them into numbers);
- PostgreSQL (psycopg 3): JSON wrapped in ``Json``, aware datetimes, decimals as they are.

Small key lists are joined through temporary tables instead of ``IN (...)``
lists, so a batch needs a few statements, not one per 500 keys; each :meth:`Bulk.keys`
call gets a table of its own, so no caller can clobber another's keys.

On PostgreSQL, inserts, upserts and key tables of more than a few rows go through
``COPY``: psycopg's ``executemany`` still runs one statement per row on the server,
while ``COPY`` into a temporary staging table and one ``INSERT ... SELECT ... ON
CONFLICT`` from it costs a fraction of that (bench/README.md). Rows that repeat a
key within one upsert keep the row-by-row path, whose "each row in turn" meaning
(the last wins, ``assign`` sees the earlier ones) one ``INSERT ... SELECT`` cannot give.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from cdp_core.store.sql import on_conflict_sql
from sqlalchemy import Connection

COPY_MIN_ROWS = 64
"""Fewer rows than this go row by row on PostgreSQL too: a staging round trip costs more."""


def _dumps(value: Any) -> str:
    # orjson: ~10x faster than json.dumps on record-sized objects, and the write path
    # serializes every record, identifier set and trait document (bench/README.md).
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):  # integers beyond 64 bits, exotic keys
        return json.dumps(value, ensure_ascii=False, default=str)


class Bulk:
    """Driver-level statements on one SQLAlchemy connection (inside its transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.mark = "?" if self.sqlite else "%s"
        # Joins of a small temporary key table with a large table must start from the keys.
        # SQLite's planner has no statistics for temporary tables and may scan the large
        # table instead (measured: seconds per batch on a 250,000-row id_set_members);
        # CROSS JOIN is its documented way to fix the order. PostgreSQL plans this itself.
        self.join = "CROSS JOIN" if self.sqlite else "JOIN"
        self._temps: set[str] = set()
        self._key_tables: dict[str, int] = {}
        if not self.sqlite:
            from psycopg.types.json import Json

            self._json = Json

    def index_joins(self) -> None:
        """For this transaction, join the key tables to the large tables through their indexes.

        The write path joins a batch's temporary key tables (at most a batch of keys) with
        tables that grow with the store. PostgreSQL's planner has no statistics for the key
        tables and picks a hash join over a full scan of the large table, whose cost grows
        with the store (measured at 1,000,000 persons: 457 ms against 81 ms for the index
        lookups, bench/README.md). ``SET LOCAL`` ends with the transaction. SQLite: see ``join``.
        """
        if not self.sqlite:
            self.execute("SET LOCAL enable_hashjoin = off")
            self.execute("SET LOCAL enable_mergejoin = off")

    # -- values ------------------------------------------------------------------------
    def json(self, value: Any) -> Any:
        if value is None:
            return None
        return _dumps(value) if self.sqlite else self._json(value, dumps=_dumps)

    def time(self, value: datetime | None) -> Any:
        if value is None:
            return None
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        if self.sqlite:
            # SQLAlchemy's SQLite format, YYYY-MM-DD HH:MM:SS.ffffff (isoformat is ~10x faster than strftime)
            return aware.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        return aware.astimezone(UTC)

    def naive_time(self, value: datetime | None) -> Any:
        """:meth:`time` of a value already naive UTC (``sortkey.naive_utc``): one conversion per record
        on the write path, which stores each record's time twice (bench/README.md, "ingest.py")."""
        if value is None:
            return None
        return value.isoformat(" ", "microseconds") if self.sqlite else value.replace(tzinfo=UTC)

    def json_text(self, value: Any, text: bytes | None) -> Any:
        """:meth:`json` of ``value`` whose JSON ``text`` the caller has already (None: not at hand).

        SQLite stores the text as it is; psycopg adapts ``Json`` itself, so PostgreSQL dumps again.
        """
        if text is not None and self.sqlite:
            return text.decode()
        return self.json(value)

    def number(self, value: Decimal | None) -> Any:
        if value is None:
            return None
        return str(value) if self.sqlite else value

    def read_json(self, value: Any) -> Any:
        # psycopg decodes json columns itself; sqlite3 hands back the text.
        if self.sqlite and isinstance(value, str):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:  # NaN or Infinity, which json.dumps wrote before
                return json.loads(value)
        return value

    def read_time(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    # -- statements --------------------------------------------------------------------
    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.conn.exec_driver_sql(sql, list(rows))

    def query(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any]:
        return self.conn.exec_driver_sql(sql, tuple(params)).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.exec_driver_sql(sql, tuple(params))

    def upsert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        keys: Sequence[str],
        update: Sequence[str] | None = None,
        assign: dict[str, str] | None = None,
    ) -> None:
        """``INSERT ... ON CONFLICT (keys) DO UPDATE SET ...`` (or ``DO NOTHING`` when nothing to update).

        :param update: columns taken from the new row; default every non-key column.
        :param assign: extra ``column -> SQL expression`` assignments (``excluded.x`` is the new row).
        """
        if not rows:
            return
        cols = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join(self.mark for _ in columns)
        targets = [c for c in columns if c not in keys] if update is None else list(update)
        conflict = on_conflict_sql(keys, targets, assign)
        if self._copies(rows) and _unique(rows, [list(columns).index(k) for k in keys]):
            stage = self._stage(table, columns)
            self.execute(f'DELETE FROM "{stage}"')
            self._copy(stage, columns, rows)
            self.execute(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM "{stage}" {conflict}')
            return
        self.many(f'INSERT INTO "{table}" ({cols}) VALUES ({marks}) {conflict}', rows)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self._copies(rows):
            self._copy(table, columns, rows)
            return
        cols = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join(self.mark for _ in columns)
        self.many(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', rows)

    # -- COPY (PostgreSQL) -------------------------------------------------------------
    def _copies(self, rows: Sequence[Any]) -> bool:
        return not self.sqlite and len(rows) >= COPY_MIN_ROWS

    def _copy(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """``COPY table (columns) FROM STDIN`` on this connection, in its transaction."""
        cols = ", ".join(f'"{c}"' for c in columns)
        raw = self.conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor, cursor.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)

    def _stage(self, table: str, columns: Sequence[str]) -> str:
        """A temporary table with ``columns`` of ``table`` (their types, no constraints), emptied at commit."""
        name = f"cdp_stage_{table}_{zlib.crc32(','.join(columns).encode()):08x}"
        if name not in self._temps:
            cols = ", ".join(f'"{c}"' for c in columns)
            # CREATE TABLE AS copies the column types but no NOT NULL or key: the stage takes any row
            self.execute(
                f'CREATE TEMP TABLE IF NOT EXISTS "{name}" ON COMMIT DELETE ROWS AS '
                f'SELECT {cols} FROM "{table}" WITH NO DATA'
            )
            self._temps.add(name)
        return name

    @contextmanager
    def zeroing(self) -> Iterator[None]:
        """What the block deletes or rewrites is overwritten with zeros on SQLite (``secure_delete``).

        For rewrites that drop a profile id from a row outside a forget (a fast-path record given
        its set, a record deleted by its source): SQLite leaves the old bytes in the page's free
        space otherwise, where a later forget of that person could not reach them
        (docs/privacy.md). PostgreSQL's old row versions are the forget's VACUUM's to reclaim.
        """
        if not self.sqlite:
            yield
            return
        was = self.query("PRAGMA secure_delete")[0][0]
        self.execute("PRAGMA secure_delete=ON")
        try:
            yield
        finally:
            if not was:
                self.execute("PRAGMA secure_delete=OFF")

    def least(self, a: str, b: str) -> str:
        return f"min({a}, {b})" if self.sqlite else f"LEAST({a}, {b})"

    def keys(self, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
        """A temporary table of its own holding ``rows`` (TEXT ``columns``), for joins; returns its name.

        Every call gets a table no other call of this transaction uses, so a caller's keys
        stay as it wrote them while it runs queries, whatever the functions it calls fill
        meanwhile. Tables are named by their columns and a number counted per transaction,
        so later transactions on the connection reuse them: created once per connection
        (``IF NOT EXISTS``), emptied before use.
        """
        shape = "_".join(columns)
        number = self._key_tables.get(shape, 0) + 1
        self._key_tables[shape] = number
        name = f"cdp_keys_{shape}_{number}"
        if name not in self._temps:
            cols = ", ".join(f'"{c}" TEXT' for c in columns)
            if self.sqlite:
                self.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{name}" ({cols})')
            else:
                self.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{name}" ({cols}) ON COMMIT DELETE ROWS')
            self._temps.add(name)
        self.execute(f'DELETE FROM "{name}"')
        self.insert(name, columns, [tuple(r) for r in rows])
        return name

def _unique(rows: Sequence[Sequence[Any]], positions: list[int]) -> bool:
    """Does no key repeat among ``rows``?"""
    if len(positions) == 1:
        at = positions[0]
        return len({row[at] for row in rows}) == len(rows)
    return len({tuple(row[i] for i in positions) for row in rows}) == len(rows)
