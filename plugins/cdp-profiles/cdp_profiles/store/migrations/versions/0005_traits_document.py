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

A trait value that is not a finite number (NaN, Infinity, -Infinity: json.dumps wrote them
as bare tokens before the store used orjson) becomes null: see "Non-finite values" below.

Both directions are one statement per step, whatever the store's size: SQL's JSON
functions do the work. On SQLite, small Python functions registered on the migration's
connection convert times, REAL numbers and values exactly as Python (and so the writer) does.
"""

from __future__ import annotations

import json
import logging
import math
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

# Non-finite values: a trait value that is NaN or an infinity is carried over as JSON null. JSON has no
# NaN or Infinity: the tokens json.dumps wrote for them (the writer before orjson) are not JSON,
# and profiles.traits is read by SQL (json_extract, ->>, your own queries), which must get valid
# JSON. null is also what the writer stores for them now (orjson writes null), so a profile it
# recomputes gets the same value. Refusing the store instead (the migration stopped here on
# SQLite) would lose nothing but would leave the store unusable until someone edits rows by hand.
# - SQLite: the old column (NUMERIC affinity) kept NaN, Infinity and -Infinity as TEXT, alone or
#   inside a list or object, which json() refuses; a number beyond a double's range became a REAL
#   infinity. Such values go through Python (cdp_0005_real, cdp_0005_finite), every other value
#   stays in SQL.
# - PostgreSQL: the old column is json, whose input refuses those tokens, so no old PostgreSQL store
#   holds them (the old writer's INSERT failed). It accepts a number beyond a double's range
#   (1e400), which Python reads as an infinity: as on SQLite, such a value (a number, not an
#   integer, at the top level) becomes null.
_DOUBLE_OVERFLOW = 2**1024 - 2**970  # the least magnitude that a decimal number rounds to an infinite double

# The deciding record's sort key as the old rows know it: UTC wall time with microseconds ("~" when
# unknown), the source stream, and an empty record key.
_PG_KEY = (
    "COALESCE(to_char(t.set_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '~')"
    " || '|' || COALESCE(t.source, '') || '|'"
)

# the old value, but null for a number Python reads as an infinity (an integer it reads exactly)
_PG_VALUE = (
    "CASE WHEN json_typeof(t.value) = 'number' AND (t.value #>> '{}') ~ '[.eE]'"
    f" AND abs((t.value #>> '{{}}')::numeric) >= {_DOUBLE_OVERFLOW} THEN 'null'::json ELSE t.value END"
)

_PG_UPGRADE = f"""
UPDATE profiles SET traits = d.vals, trait_sources = json_build_object('r', json_build_array(), 'n', d.names)
FROM (
    SELECT t.profile_id, json_object_agg(t.name, {_PG_VALUE}) AS vals, json_object_agg(t.name, {_PG_KEY}) AS names
    FROM traits t
    GROUP BY t.profile_id
) AS d
WHERE profiles.id = d.profile_id
"""

# json(value): the stored JSON text as JSON (not as a string); SQL NULL gives null. A column
# declared JSON has NUMERIC affinity on SQLite: a number the writer stored as JSON text is
# kept as an INTEGER or a REAL. SQLite would write a REAL with 15 digits; Python writes
# the shortest text that reads back as the same double, as the writer did. A TEXT value that is not
# JSON (json_valid: strict RFC 8259, whatever the SQLite version) is one holding NaN or Infinity.
_SQLITE_UPGRADE = """
UPDATE profiles SET
    traits = (
        SELECT json_group_object(
            t.name,
            json(
                CASE WHEN typeof(t.value) = 'real' THEN cdp_0005_real(t.value)
                     WHEN typeof(t.value) = 'text' AND NOT json_valid(t.value) THEN cdp_0005_finite(t.value)
                     ELSE t.value END
            )
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
    dbapi.create_function("cdp_0005_finite", 1, _finite_json, deterministic=True)
    dbapi.create_function("cdp_0005_value", 2, _value_json, deterministic=True)
    dbapi.create_function("cdp_0005_source", 2, _source, deterministic=True)
    dbapi.create_function("cdp_0005_time", 2, _time, deterministic=True)


def _parse_utc(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _key(stored_set_at: str | None, source: str | None) -> str:
    """The sort key of a trait's deciding record, as far as an old row knows it."""
    when = (
        "~" if stored_set_at is None else _parse_utc(stored_set_at).replace(tzinfo=None).isoformat("T", "microseconds")
    )
    return f"{when}|{source or ''}|"


def _real_json(value: float) -> str:
    """A REAL as JSON: the shortest text that reads back as the same double (``0.1``, not ``0.10000000000000001``).

    An infinity (a number beyond a double's range) is null: see "Non-finite values".
    """
    return json.dumps(value) if math.isfinite(value) else "null"


def _finite_json(text: str) -> str:
    """JSON text as json.dumps wrote it, with NaN, Infinity or -Infinity, as JSON: each becomes null.

    Text that is not JSON even so raises (json.JSONDecodeError): the migration rolls back.
    """
    return json.dumps(_finite(json.loads(text)), ensure_ascii=False, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


def _value_json(value: Any, kind: str) -> str | None:
    """A json_each value as the JSON text the old table held; None (SQL NULL) for null."""
    if kind == "null":
        return None
    if kind in ("true", "false"):
        return kind
    if kind == "real" and not math.isfinite(value):  # 1e400 in the document: no value, as upgrading makes it
        return None
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
