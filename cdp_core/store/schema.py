"""Creating and upgrading the store's schema with alembic migrations, one history per owner.

The kernel owns the system tables (sync state, runs, quarantine, leases) and their
migration history; a plugin that keeps tables in the store ships its own history
(``cdp_register_migrations``) with its own version table, so the kernel never knows a
plugin's tables and a plugin's revisions never depend on the kernel's numbering.
:func:`create_schema` brings a database to the head of the kernel's history and of
every history it is given, kernel first, and is cheap enough to call on every start:

- fast path: a PostgreSQL database this process has seen at head is not looked
  at again; otherwise one ``SELECT version_num FROM <version table>`` per history
  tells whether alembic has anything to do;
- slow path: one transaction that first takes the migration lock (a
  transaction-scoped advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite,
  and a process-wide lock, since alembic's ``op``/``context`` are globals), then
  re-reads the revision (a process that started at the same time may have
  migrated meanwhile) and runs ``alembic upgrade head`` on that same connection.
  A failing migration rolls back whole.

A history may adopt tables that exist without a revision (``baseline_tables``: all of
them there: stamped at the baseline; some: the baseline creates the missing ones) and
may take over the revision another version table holds (``previous_version_table``),
which is how a store written before the histories were split keeps its rows.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Connection, Engine, Table, inspect, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from cdp_core.store.transaction import advisory_key

if TYPE_CHECKING:
    # alembic is imported only to migrate: a store at head is recognised by one SELECT and
    # the head revision read from the migration files (:func:`_plain_head`), so read commands
    # never load it.
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

# Set on the alembic config when some, not all, baseline tables exist: the baseline
# revision then creates only the missing ones.
ADOPT_EXISTING = "cdp_adopt_existing_tables"
HISTORY = "cdp_history"
"""The alembic config attribute that hands the running :class:`History` to env.py."""
# pg_advisory_xact_lock key: a fixed 32-bit number derived from a name, the same in every process.
_PG_LOCK_KEY = advisory_key("cdp_core.store.schema")

# alembic's `context` and `op` are module-level proxies: one migration at a time per process.
_process_lock = threading.RLock()
# (server database URL, history name) pairs this process has migrated or found at head.
_at_head: set[tuple[str, str]] = set()


class SchemaError(RuntimeError):
    """The database's schema cannot be brought to this version of cdp."""


@dataclass(frozen=True)
class History:
    """One owner's migration history: the kernel's, or a plugin's.

    :param name: who owns it (the plugin's name), for messages.
    :param script_location: the folder with ``env.py``, ``script.py.mako`` and ``versions/``.
    :param version_table: where the database keeps this history's revision; unique per history.
    :param models: the module prefix of the SQLModel table classes this history creates
        (``"cdp_core.store."``): its tables, for autogenerate and for leaving others alone.
    :param baseline: the first revision, which may adopt tables that exist already.
    :param baseline_tables: the tables the baseline creates; a database holding all of
        them without a revision is stamped at ``baseline``, one holding some gets the rest.
    :param previous_version_table: a version table that held this history's revision
        before (the single history of stores older than the split): its revision is
        taken over and the old table dropped.
    :param model_modules: the modules that define the models, imported before a migration
        (their classes register the tables on SQLModel's metadata). A store found at the head of
        its histories needs none of them: a read command then loads only the models it queries.
    """

    name: str
    script_location: Path
    version_table: str
    models: str
    baseline: str | None = None
    baseline_tables: frozenset[str] = field(default_factory=frozenset)
    previous_version_table: str | None = None
    model_modules: tuple[str, ...] = ()

    def import_models(self) -> None:
        """Import :attr:`model_modules` (once per process, as any import)."""
        for module in self.model_modules:
            importlib.import_module(module)

    def tables(self) -> frozenset[str]:
        """Names of the tables this history's models define (the database may hold others)."""
        from sqlmodel import SQLModel

        names: set[str] = set()
        for mapper in SQLModel._sa_registry.mappers:
            if mapper.class_.__module__.startswith(self.models) and isinstance(mapper.local_table, Table):
                names.add(mapper.local_table.name)
        return frozenset(names)

    def include_object(self, obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        """Alembic filter: only this history's tables; a destination's or another history's are not ours."""
        if type_ == "table":
            return name in self.tables()
        return True

    def alembic_config(self, connection: Connection | None = None) -> Config:
        """An alembic configuration for this history; no alembic.ini involved."""
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(self.script_location))
        # `%%` because the options go through ConfigParser interpolation.
        config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
        config.set_main_option("path_separator", "os")
        config.attributes[HISTORY] = self
        if connection is not None:
            config.attributes["connection"] = connection
        return config

    def head(self) -> str:
        return _head(self.script_location)


MIGRATIONS = Path(__file__).resolve().with_name("migrations")
KERNEL = History(
    name="cdp-core",
    script_location=MIGRATIONS,
    version_table="cdp_core_version",
    models="cdp_core.store.",
    baseline="k0001",
    baseline_tables=frozenset({"sync_state", "sync_runs", "quarantine", "sync_leases"}),
    model_modules=("cdp_core.store.models", "cdp_core.store.lease_models", "cdp_core.store.ingest_models"),
)
"""The kernel's history: the system tables."""


def create_schema(engine: Engine, *histories: History) -> None:
    """Bring the database to the head of the kernel's history and of ``histories`` (idempotent, concurrency-safe)."""
    ordered = [KERNEL, *(h for h in histories if h.name != KERNEL.name)]
    key = _cache_key(engine)
    pending = [h for h in ordered if key is None or (key, h.name) not in _at_head]
    if not pending:
        return
    stale = [h for h in pending if _current_revision(engine, h) != h.head()]
    if stale:
        for history in ordered:
            history.import_models()
        with _process_lock, migration_transaction(engine) as conn:
            for history in stale:
                _upgrade(conn, history)
    if key is not None:
        _at_head.update((key, h.name) for h in pending)


def forget_schema_cache() -> None:
    """Drop the in-process record of databases known to be at head (for tests)."""
    _at_head.clear()


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
    PostgreSQL has no ``=`` for ``json``: a JSON default is compared by its text.
    """
    if not isinstance(metadata_column.type, JSON) or None in (inspected_default, rendered_metadata_default):
        return None
    return _default_text(inspected_default) != _default_text(rendered_metadata_default)


def _default_text(rendered: str | None) -> str:
    """``'{}'::json`` (PostgreSQL), ``'{}'`` (SQLite, the model) -> ``{}``."""
    text = re.sub(r"::\w+$", "", (rendered or "").strip())
    return text[1:-1].replace("''", "'") if len(text) >= 2 and text[0] == text[-1] == "'" else text


# -- internals ------------------------------------------------------------------------------


_REVISION_LINE = re.compile(r"^(revision|down_revision)(?:\s*:[^=]*)?\s*=\s*(.+?)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"""^(?:"([^"]*)"|'([^']*)'|None)$""")


def _plain_head(script_location: Path) -> str | None:
    """The head revision read from the migration files without alembic; None when they are not plain.

    Plain: every file in ``versions/`` names one ``revision`` and at most one ``down_revision``
    as string literals, and exactly one revision is nobody's parent. Anything else (merges,
    branches, computed values) is left to alembic.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for file in (script_location / "versions").glob("*.py"):
        found = dict((key, value) for key, value in _REVISION_LINE.findall(file.read_text(encoding="utf-8")))
        literals = {key: _QUOTED.match(value) for key, value in found.items()}
        if "revision" not in found or any(match is None for match in literals.values()):
            return None
        revision = literals["revision"]
        assert revision is not None
        name = revision.group(1) or revision.group(2)
        if not name:
            return None
        revisions.add(name)
        parent = literals.get("down_revision")
        if parent is not None and (parent.group(1) or parent.group(2)):
            parents.add(parent.group(1) or parent.group(2))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


@functools.cache
def _head(script_location: Path) -> str:
    plain = _plain_head(script_location)
    if plain is not None:
        return plain
    return _alembic_head(script_location)


def _alembic_head(script_location: Path) -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("path_separator", "os")
    head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:
        raise SchemaError(f"the migrations in {script_location} have no head revision")
    return head


def _cache_key(engine: Engine) -> str | None:
    """The key under which a database found at head is remembered; None: never remember it.

    Only server databases are remembered. A SQLite file can be deleted and made
    again under the same URL (and an in-memory one is new per connection), and
    the one-query check costs next to nothing there.
    """
    if engine.url.get_backend_name() == "sqlite":
        return None
    return engine.url.render_as_string(hide_password=False)


def _current_revision(engine: Engine, history: History) -> str | None:
    """The history's revision in the database, with one query; None when there is none (or not cheaply read)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(f"SELECT version_num FROM {history.version_table}")).scalars().all()
    except (OperationalError, ProgrammingError):  # no version table yet
        return None
    return rows[0] if len(rows) == 1 else None


def _heads(conn: Connection, version_table: str) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext

    return tuple(MigrationContext.configure(conn, opts={"version_table": version_table}).get_current_heads())


def _upgrade(conn: Connection, history: History) -> None:
    """Inside the locked transaction: adopt or take over what exists, then upgrade to head."""
    from alembic import command

    head = history.head()
    current = _heads(conn, history.version_table)
    if current == (head,):
        return  # another process migrated while we waited for the lock
    config = history.alembic_config(conn)
    existing_tables = set(inspect(conn).get_table_names())
    if not current and history.previous_version_table in existing_tables:
        assert history.previous_version_table is not None
        previous = _heads(conn, history.previous_version_table)
        _check_known(history, previous)
        if previous:
            command.stamp(config, previous)
        conn.execute(text(f"DROP TABLE {history.previous_version_table}"))
        current = previous
    if not current and history.baseline is not None:
        existing = history.baseline_tables & existing_tables
        if existing and existing == history.baseline_tables:
            command.stamp(config, history.baseline)
        elif existing:
            config.attributes[ADOPT_EXISTING] = True
    elif current:
        _check_known(history, current)
    command.upgrade(config, "head")


def _check_known(history: History, current: tuple[str, ...]) -> None:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    script = ScriptDirectory.from_config(history.alembic_config())
    for revision in current:
        try:
            known = script.get_revision(revision)
        except CommandError:
            known = None
        if known is None:
            raise SchemaError(
                f"the store database is at {history.name} schema revision {revision!r}, which this version does "
                f"not know (its newest is {history.head()!r}): it was upgraded by a newer release; upgrade "
                f"{history.name} to use it"
            )
