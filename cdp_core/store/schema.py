"""Creating and upgrading the store's schema with alembic migrations.

The ORM models (models.py, profile_models.py) describe the tables; the revisions
in ``migrations/versions`` create and change them, so an upgrade never loses
data. :func:`create_schema` brings any store database to the newest revision
("head") and is cheap enough to call on every start:

- fast path: a PostgreSQL database this process has seen at head is not looked
  at again; otherwise one ``SELECT version_num FROM alembic_version`` tells
  whether alembic has anything to do;
- slow path: one transaction that first takes the migration lock (a
  transaction-scoped advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite,
  and a process-wide lock, since alembic's ``op``/``context`` are globals), then
  re-reads the revision (a process that started at the same time may have
  migrated meanwhile) and runs ``alembic upgrade head`` on that same connection.
  A failing migration rolls back whole.

A database made before migrations existed (tables created by
``SQLModel.metadata.create_all``, no ``alembic_version``) is stamped at the
baseline revision, keeping its rows; the later revisions then run as usual.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import JSON, Connection, Engine, MetaData, inspect, text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlmodel import SQLModel

from cdp_core.store import (  # noqa: F401 - registers every table on the metadata
    audience_models,
    lease_models,
    models,
    profile_models,
)

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
BASELINE = "0001"
# The tables revision 0001 creates: what a database made by ``create_all`` before
# migrations existed holds (or part of it, if it predates some of them). Frozen, like 0001:
# ``traits`` stays although no model defines it any more (0005 folds it into ``profiles.traits``
# and drops it), so an old database is still recognized, stamped, and then migrated.
BASELINE_TABLES = frozenset(
    {
        "sync_state",
        "sync_runs",
        "quarantine",
        "profiles",
        "id_sets",
        "id_set_members",
        "record_index",
        "profile_records",
        "events",
        "orders",
        "nps_responses",
        "consents",
        "identities",
        "traits",
        "merge_log",
    }
)
# Set on the alembic config when some, not all, baseline tables exist: 0001 then
# creates only the missing ones.
ADOPT_EXISTING = "cdp_adopt_existing_tables"
# pg_advisory_xact_lock key: a fixed 32-bit number derived from a name, the same in every process.
_PG_LOCK_KEY = zlib.crc32(b"cdp_core.store.schema")

# alembic's `context` and `op` are module-level proxies: one migration at a time per process.
_process_lock = threading.RLock()
# Server databases this process has migrated or found at head, by URL (see _cache_key).
_at_head: set[str] = set()


class SchemaError(RuntimeError):
    """The database's schema cannot be brought to this version of cdp."""


def create_schema(engine: Engine) -> None:
    """Bring the database to the current schema (idempotent, safe to call concurrently)."""
    key = _cache_key(engine)
    if key is not None and key in _at_head:
        return
    head = head_revision()
    if _current_revision(engine) != head:
        with _process_lock, migration_transaction(engine) as conn:
            _upgrade(conn, head)
    if key is not None:
        _at_head.add(key)


def forget_schema_cache() -> None:
    """Drop the in-process record of databases known to be at head (for tests)."""
    _at_head.clear()


@functools.cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the store's migrations have no head revision"
    return head


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic configuration for the store's migrations; no alembic.ini involved."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # `%%` because the options go through ConfigParser interpolation.
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextlib.contextmanager
def migration_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction holding the store's migration lock; commits when the block ends without error.

    PostgreSQL: ``pg_advisory_xact_lock``, released at commit or rollback, so a second
    process starting at the same moment waits here until the first has migrated.
    SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock up front (a second
    writer waits up to the engine's busy timeout); it also makes the DDL
    transactional, which the sqlite3 module's implicit transactions would not.
    """
    backend = engine.url.get_backend_name()
    with engine.connect() as conn:
        if backend == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            return
        with conn.begin():
            if backend == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            yield conn


def target_metadata() -> MetaData:
    """The metadata the migrations must match: SQLModel's (the ORM's source of truth)."""
    return SQLModel.metadata


def store_tables() -> frozenset[str]:
    """Names of the tables cdp's store models define (other code may share the metadata or the database)."""
    names = set()
    for mapper in SQLModel._sa_registry.mappers:
        if mapper.class_.__module__.startswith("cdp_core.store.") and mapper.local_table is not None:
            names.add(mapper.local_table.name)
    return frozenset(names)


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic filter: only the store's own tables; a destination's tables in the same database are not ours."""
    if type_ == "table":
        return name in store_tables()
    return True


def compare_server_default(
    context: MigrationContext,
    inspected_column: Any,
    metadata_column: Any,
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Alembic hook (``compare_server_default=``): is a JSON column's default different? None: alembic decides.

    Alembic compares a default by asking the server (``SELECT '{}'::json = '{}'``), and
    PostgreSQL has no ``=`` for ``json``: a JSON default (``profiles.traits``) is compared by its text.
    """
    if not isinstance(metadata_column.type, JSON) or None in (inspected_default, rendered_metadata_default):
        return None
    return _default_text(inspected_default) != _default_text(rendered_metadata_default)


def _default_text(rendered: str | None) -> str:
    """``'{}'::json`` (PostgreSQL), ``'{}'`` (SQLite, the model) -> ``{}``."""
    text = re.sub(r"::\w+$", "", (rendered or "").strip())
    return text[1:-1].replace("''", "'") if len(text) >= 2 and text[0] == text[-1] == "'" else text


# -- internals ------------------------------------------------------------------------------


def _cache_key(engine: Engine) -> str | None:
    """The key under which a database found at head is remembered; None: never remember it.

    Only server databases are remembered. A SQLite file can be deleted and made
    again under the same URL (and an in-memory one is new per connection), and
    the one-query check costs next to nothing there.
    """
    if engine.url.get_backend_name() == "sqlite":
        return None
    return engine.url.render_as_string(hide_password=False)


def _current_revision(engine: Engine) -> str | None:
    """The database's revision, with one query; None when there is none (or it cannot be read cheaply)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except (OperationalError, ProgrammingError):  # no alembic_version table yet
        return None
    return rows[0] if len(rows) == 1 else None


def _upgrade(conn: Connection, head: str) -> None:
    """Inside the locked transaction: stamp a pre-migration database, then upgrade to head."""
    current = MigrationContext.configure(conn).get_current_heads()
    if current == (head,):
        return  # another process migrated while we waited for the lock
    config = alembic_config(conn)
    if not current:
        existing = BASELINE_TABLES & set(inspect(conn).get_table_names())
        if existing == BASELINE_TABLES:
            command.stamp(config, BASELINE)
        elif existing:
            config.attributes[ADOPT_EXISTING] = True
    else:
        _check_known(current, head)
    command.upgrade(config, "head")


def _check_known(current: tuple[str, ...], head: str) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    for revision in current:
        try:
            known = script.get_revision(revision)
        except CommandError:
            known = None
        if known is None:
            raise SchemaError(
                f"the store database is at schema revision {revision!r}, which this version of cdp does not know "
                f"(its newest is {head!r}): it was upgraded by a newer cdp; upgrade cdp to use it"
            )
