"""profiles.traits (name -> value) and profiles.trait_sources replace the traits table; profiles.settled.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

Upgrade:

1. ``profiles`` gets ``traits`` and ``trait_sources`` (JSON, NOT NULL, default ``{}``) and
   ``settled`` (boolean, NOT NULL, default false: every existing profile is unsettled, so
   the writer recomputes it from its records before it extends it in place).
2. The rows of ``traits`` (profile_id, name, value, source, set_at) become each profile's
   ``traits`` object ``{name: value}`` and its ``trait_sources`` ``{"r": [], "n": {name:
   "TIME|SOURCE|"}}``: the deciding record's sort key as far as the old rows know it (its
   time in UTC, ``~`` for none, and its stream; the record key is not known). A trait row
   whose profile row no longer exists belongs to nobody and goes with the table (the
   count is logged).
3. ``traits`` is dropped.

Downgrade: ``traits`` as revision 0001 made it, one row per trait of every profile (a null
value as SQL NULL, as the old writer stored it), then the three columns go.

Both directions are one statement per step, whatever the store's size: SQL's JSON
functions do the work. On SQLite, small Python functions registered on the migration's
connection convert times, REAL numbers and values exactly as Python (and so the writer) does.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)

# -- upgrade --------------------------------------------------------------------------------

# The deciding record's sort key as the old rows know it: UTC wall time with microseconds ("~" when
# unknown), the source stream, and an empty record key.
_PG_KEY = (
    "COALESCE(to_char(t.set_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '~')"
    " || '|' || COALESCE(t.source, '') || '|'"
)

_PG_UPGRADE = f"""
UPDATE profiles SET traits = d.vals, trait_sources = json_build_object('r', json_build_array(), 'n', d.names)
FROM (
    SELECT t.profile_id, json_object_agg(t.name, t.value) AS vals, json_object_agg(t.name, {_PG_KEY}) AS names
    FROM traits t
    GROUP BY t.profile_id
) AS d
WHERE profiles.id = d.profile_id
"""

# json(value): the stored JSON text as JSON (not as a string); SQL NULL gives null. A column
# declared JSON has NUMERIC affinity on SQLite: a number the writer stored as JSON text is
# kept as an INTEGER or a REAL. SQLite would write a REAL with 15 digits; Python writes
# the shortest text that reads back as the same double, as the writer did.
_SQLITE_UPGRADE = """
UPDATE profiles SET
    traits = (
        SELECT json_group_object(
            t.name, json(CASE typeof(t.value) WHEN 'real' THEN cdp_0005_real(t.value) ELSE t.value END)
        )
        FROM traits t WHERE t.profile_id = profiles.id
    ),
    trait_sources = (
        SELECT json_object('r', json_array(), 'n', json_group_object(t.name, cdp_0005_key(t.set_at, t.source)))
        FROM traits t WHERE t.profile_id = profiles.id
    )
WHERE id IN (SELECT profile_id FROM traits)
"""

_ORPHANS = "SELECT COUNT(*) FROM traits t WHERE NOT EXISTS (SELECT 1 FROM profiles p WHERE p.id = t.profile_id)"


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("profiles") as batch_op:
        batch_op.add_column(sa.Column("traits", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("trait_sources", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("settled", sa.Boolean(), server_default=sa.false(), nullable=False))
    orphans = bind.exec_driver_sql(_ORPHANS).scalar_one()
    if orphans:
        log.warning("%d trait rows belong to no profile (no such profiles row): they are not kept", orphans)
    if bind.dialect.name == "sqlite":
        _sqlite_functions(bind)
        bind.exec_driver_sql(_SQLITE_UPGRADE)
    else:
        bind.exec_driver_sql(_PG_UPGRADE)
    op.drop_table("traits")


# -- downgrade ------------------------------------------------------------------------------

# "n" maps a name to an index into "r" (the writer) or to the sort key itself (this migration).
_PG_DOWNGRADE = """
INSERT INTO traits (profile_id, name, value, source, set_at)
SELECT p.id,
       e.key,
       CASE WHEN json_typeof(e.value) = 'null' THEN NULL ELSE e.value END,
       NULLIF(split_part(k.key, '|', 2), ''),
       CASE WHEN k.key IS NULL OR left(k.key, 1) = '~' THEN NULL
            ELSE (split_part(k.key, '|', 1) || '+00:00')::timestamptz END
FROM profiles p
CROSS JOIN LATERAL json_each(p.traits) AS e
CROSS JOIN LATERAL (
    SELECT CASE json_typeof(p.trait_sources -> 'n' -> e.key)
           WHEN 'number' THEN p.trait_sources -> 'r' ->> (p.trait_sources -> 'n' ->> e.key)::int
           ELSE p.trait_sources -> 'n' ->> e.key END AS key
) AS k
"""

_SQLITE_DOWNGRADE = """
INSERT INTO traits (profile_id, name, value, source, set_at)
SELECT p.id, e.key, cdp_0005_value(e.value, e.type),
       cdp_0005_source(p.trait_sources, e.key), cdp_0005_time(p.trait_sources, e.key)
FROM profiles p, json_each(p.traits) AS e
"""


def downgrade() -> None:
    bind = op.get_bind()
    op.create_table(  # as in 0001
        "traits",
        sa.Column("profile_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("profile_id", "name"),
    )
    if bind.dialect.name == "sqlite":
        _sqlite_functions(bind)
        bind.exec_driver_sql(_SQLITE_DOWNGRADE)
    else:
        bind.exec_driver_sql(_PG_DOWNGRADE)
    # batch: SQLite copies the table without the columns (rows and indexes kept)
    with op.batch_alter_table("profiles") as batch_op:
        batch_op.drop_column("settled")
        batch_op.drop_column("trait_sources")
        batch_op.drop_column("traits")


# -- SQLite helpers -------------------------------------------------------------------------


def _sqlite_functions(bind: sa.Connection) -> None:
    """Register the conversions on the sqlite3 connection the migration runs on.

    A value they cannot read raises, and the migration rolls back whole: nothing is lost.
    """
    dbapi = bind.connection.driver_connection
    assert dbapi is not None
    dbapi.create_function("cdp_0005_key", 2, _key, deterministic=True)
    dbapi.create_function("cdp_0005_real", 1, _real_json, deterministic=True)
    dbapi.create_function("cdp_0005_value", 2, _value_json, deterministic=True)
    dbapi.create_function("cdp_0005_source", 2, _source, deterministic=True)
    dbapi.create_function("cdp_0005_time", 2, _time, deterministic=True)


def _parse_utc(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _key(stored_set_at: str | None, source: str | None) -> str:
    """The sort key of a trait's deciding record, as far as an old row knows it."""
    when = "~" if stored_set_at is None else _parse_utc(stored_set_at).replace(tzinfo=None).isoformat("T", "microseconds")
    return f"{when}|{source or ''}|"


def _real_json(value: float) -> str:
    """A REAL as JSON: the shortest text that reads back as the same double (``0.1``, not ``0.10000000000000001``)."""
    return json.dumps(value)


def _value_json(value: Any, kind: str) -> str | None:
    """A json_each value as the JSON text the old table held; None (SQL NULL) for null."""
    if kind == "null":
        return None
    if kind in ("true", "false"):
        return kind
    if kind in ("object", "array"):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _sort_key(sources: str | None, name: str) -> str | None:
    parsed = json.loads(sources) if sources else {}
    ref = (parsed.get("n") or {}).get(name)
    if isinstance(ref, int):
        refs = parsed.get("r") or []
        return refs[ref] if 0 <= ref < len(refs) else None
    return ref if isinstance(ref, str) else None


def _source(sources: str | None, name: str) -> str | None:
    key = _sort_key(sources, name)
    return (key.split("|")[1] or None) if key and key.count("|") >= 2 else None


def _time(sources: str | None, name: str) -> str | None:
    """The deciding record's time as SQLAlchemy stores a UTC time on SQLite."""
    key = _sort_key(sources, name)
    if not key or key.startswith("~") or "|" not in key:
        return None
    return _parse_utc(key.split("|")[0]).replace(tzinfo=None).isoformat(" ", "microseconds")
