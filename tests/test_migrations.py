"""The store's schema under alembic migrations: the kernel's history and the histories plugins register.

Every test runs on SQLite and on PostgreSQL (``store_url``).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine, MetaData, event, insert, inspect, select, text
from sqlmodel import SQLModel

from cdp_core import Register, hookimpl
from cdp_core.plugins import Plugins
from cdp_core.store import SystemStore, schema
from cdp_core.store.engine import make_engine
from cdp_core.store.schema import KERNEL, History, SchemaError, create_schema, migration_transaction
from cdp_core.testing.databases import revision_of, schema_differences

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SYSTEM_TABLES = {"sync_state", "sync_runs", "quarantine", "sync_leases"}
"""The baseline's tables (k0001)."""
KERNEL_TABLES = SYSTEM_TABLES | {"ingest_log"}
"""Every table of the kernel's history at head."""


@pytest.fixture(autouse=True)
def _forget_cache() -> Iterator[None]:
    schema.forget_schema_cache()
    yield
    schema.forget_schema_cache()


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def revision(engine: Engine, version_table: str = KERNEL.version_table) -> tuple[str, ...]:
    return revision_of(engine, version_table)


def differences(engine: Engine, history: History = KERNEL, metadata: MetaData | None = None) -> list[Any]:
    return schema_differences(engine, history, metadata)


# -- the kernel's history -------------------------------------------------------------------


def test_a_fresh_database_gets_the_system_tables_at_head(engine: Engine) -> None:
    create_schema(engine)
    assert KERNEL.tables() == KERNEL_TABLES
    assert table_names(engine) == KERNEL_TABLES | {KERNEL.version_table}
    assert revision(engine) == (KERNEL.head(),)


def test_the_migrated_schema_matches_the_models(engine: Engine) -> None:
    """A model change without a migration fails here: write one (docs/store.md)."""
    create_schema(engine)
    assert differences(engine) == []


def test_the_comparison_sees_a_model_change(engine: Engine) -> None:
    create_schema(engine)
    changed = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["sync_runs"].append_column(sa.Column("host", sa.String(), nullable=True))
    sa.Index("ix_sync_runs_status", changed.tables["sync_runs"].c.status)
    kinds = {_kind(diff) for diff in differences(engine, metadata=changed)}
    assert {"add_column", "add_index"} <= kinds


def _kind(diff: Any) -> str:
    first = diff[0] if isinstance(diff, list) else diff
    return str(first[0])


def test_other_tables_in_the_same_database_are_left_alone(engine: Engine) -> None:
    # a destination may write its own tables into the store's database
    other = MetaData()
    sa.Table("crm_contacts", other, sa.Column("id", sa.Integer, primary_key=True))
    other.create_all(engine)
    create_schema(engine)
    assert "crm_contacts" in table_names(engine)
    assert differences(engine) == []


def test_create_schema_twice_is_a_no_op(engine: Engine, monkeypatch: pytest.MonkeyPatch, db_backend: str) -> None:
    create_schema(engine)
    _insert_state(engine)

    def no_alembic(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("alembic ran on a database already at head")

    monkeypatch.setattr(command, "upgrade", no_alembic)
    monkeypatch.setattr(command, "stamp", no_alembic)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    create_schema(engine)
    if db_backend == "postgresql":
        assert statements == []  # remembered in-process: not even a query
        schema.forget_schema_cache()
        create_schema(engine)
    assert statements == [f"SELECT version_num FROM {KERNEL.version_table}"]
    _assert_state(engine)


def test_a_database_from_a_newer_release_is_refused(engine: Engine) -> None:
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {KERNEL.version_table} SET version_num = 'k9999'"))
    schema.forget_schema_cache()  # a process that starts after the newer release upgraded the database
    with pytest.raises(SchemaError, match="cdp-core schema revision 'k9999'.*upgrade cdp-core"):
        create_schema(engine)


def test_a_failing_migration_rolls_back_whole(engine: Engine) -> None:
    # what a migration that breaks halfway leaves behind: nothing (SQLite too: BEGIN IMMEDIATE)
    with pytest.raises(RuntimeError, match="halfway"), migration_transaction(engine) as conn:
        conn.execute(text("CREATE TABLE half_done (id INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO half_done (id) VALUES (1)"))
        raise RuntimeError("halfway")
    assert "half_done" not in table_names(engine)


# -- stores made before the kernel had a history of its own --------------------------------


def _system_tables_without_a_revision(engine: Engine, tables: set[str]) -> None:
    """The system tables as an older release made them, in the single history it kept elsewhere."""
    create_schema(engine)
    kept = MetaData()
    kept.reflect(engine, only=sorted(SYSTEM_TABLES))
    with engine.begin() as conn:
        for table in reversed(kept.sorted_tables):
            table.drop(conn)
        conn.execute(text(f"DROP TABLE {KERNEL.version_table}"))
        conn.execute(text("DROP TABLE ingest_log"))  # added by k0003: no older release had it
    kept.create_all(engine, tables=[kept.tables[name] for name in sorted(tables)])
    if "sync_runs" in tables:
        with engine.begin() as conn:  # added by k0002: no older release had it
            conn.execute(text("ALTER TABLE sync_runs DROP COLUMN kind"))
    schema.forget_schema_cache()  # this process saw the database at head a moment ago


def test_a_store_holding_every_system_table_is_stamped_and_keeps_its_rows(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _system_tables_without_a_revision(engine, SYSTEM_TABLES)
    _insert_state(engine)
    stamped: list[str] = []
    real_stamp = command.stamp
    monkeypatch.setattr(
        command, "stamp", lambda config, revision, **kw: (stamped.append(revision), real_stamp(config, revision, **kw))
    )
    create_schema(engine)
    assert stamped == [KERNEL.baseline]
    assert revision(engine) == (KERNEL.head(),)
    _assert_state(engine)
    assert differences(engine) == []


def test_a_store_without_the_lease_table_gets_it_and_keeps_its_rows(engine: Engine) -> None:
    # stores of the releases before leases existed had only the first three
    _system_tables_without_a_revision(engine, SYSTEM_TABLES - {"sync_leases"})
    _insert_state(engine)
    create_schema(engine)
    assert table_names(engine) == KERNEL_TABLES | {KERNEL.version_table}
    assert revision(engine) == (KERNEL.head(),)
    _assert_state(engine)
    assert differences(engine) == []


# -- a plugin's history ---------------------------------------------------------------------

_TOY_REVISION = '''
"""toy: one table."""
import sqlalchemy as sa
from alembic import op

revision = "t0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("toy_items", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("toy_items")
'''


def _toy_history(folder: Path, version_table: str = "toy_version") -> History:
    (folder / "versions").mkdir(parents=True)
    (folder / "env.py").write_text("from cdp_core.store.migrate_env import run\n\nrun()\n", encoding="utf-8")
    (folder / "versions" / "t0001_toy.py").write_text(_TOY_REVISION, encoding="utf-8")
    return History(name="toy", script_location=folder, version_table=version_table, models="toy_plugin.")


class _ToyPlugin:
    def __init__(self, history: History) -> None:
        self.history = history

    @hookimpl
    def cdp_register_migrations(self, register: Register) -> None:
        register(self.history)


def test_a_plugins_history_runs_when_the_store_is_opened(
    engine: Engine, tmp_path: Path, register_plugin: Any
) -> None:
    history = _toy_history(tmp_path / "toy")
    loaded: Plugins = register_plugin(_ToyPlugin(history), name="toy")
    assert loaded.migrations == [history]
    assert loaded.info["toy"].registered["migrations"] == ["toy"]

    SystemStore(engine).create(loaded.migrations)

    assert table_names(engine) == KERNEL_TABLES | {KERNEL.version_table, "toy_items", "toy_version"}
    assert revision(engine, "toy_version") == ("t0001",)
    assert revision(engine) == (KERNEL.head(),)


def test_a_history_may_take_over_a_previous_version_table(engine: Engine, tmp_path: Path) -> None:
    """How a plugin's tables written under another version table keep their rows: the revision moves over."""
    old = _toy_history(tmp_path / "old", version_table="legacy_version")
    create_schema(engine, old)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO toy_items (id) VALUES (7)"))
    schema.forget_schema_cache()
    moved = History(
        name="toy",
        script_location=old.script_location,
        version_table="toy_version",
        models="toy_plugin.",
        previous_version_table="legacy_version",
    )
    create_schema(engine, moved)
    assert "legacy_version" not in table_names(engine)
    assert revision(engine, "toy_version") == ("t0001",)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM toy_items")).scalars().all() == [7]


def test_a_history_needs_a_version_table_of_its_own(tmp_path: Path, register_plugin: Any) -> None:
    clash = _toy_history(tmp_path / "toy", version_table=KERNEL.version_table)
    loaded: Plugins = register_plugin(_ToyPlugin(clash), name="toy")
    assert loaded.info["toy"].status == "broken"
    assert "version table 'cdp_core_version' is taken" in (loaded.info["toy"].error or "")
    assert loaded.migrations == []


# -- concurrency ----------------------------------------------------------------------------


def test_threads_creating_the_schema_at_once_all_succeed(store_url: str) -> None:
    engines = [make_engine(store_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def start(engine: Engine) -> None:
        try:
            barrier.wait(timeout=30)
            create_schema(engine)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert errors == []
        assert table_names(engines[0]) == KERNEL_TABLES | {KERNEL.version_table}
        assert revision(engines[0]) == (KERNEL.head(),)
    finally:
        for e in engines:
            e.dispose()


_PROCESS = """
import sys
from cdp_core.store.engine import make_engine
from cdp_core.store.schema import create_schema
engine = make_engine(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
create_schema(engine)
print("done", flush=True)
"""


def test_processes_starting_at_once_all_succeed(store_url: str, engine: Engine) -> None:
    """Two cdp processes starting against one new database: one migrates, the other waits, then finds it done."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS, store_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:  # release them together
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "done"
    assert table_names(engine) == KERNEL_TABLES | {KERNEL.version_table}
    assert revision(engine) == (KERNEL.head(),)


def test_a_migration_waits_for_the_lock_another_holds(store_url: str, engine: Engine) -> None:
    other = make_engine(store_url)
    finished = threading.Event()
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            create_schema(other)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            finished.set()

    try:
        with migration_transaction(engine):  # another process, mid-migration
            thread = threading.Thread(target=migrate)
            thread.start()
            # Not a timing assumption about speed: the migration cannot finish while the lock is
            # held, however long we wait; the wait only gives it the chance to (wrongly) go ahead.
            time.sleep(1.0)
            assert not finished.is_set(), "create_schema did not wait for the migration lock"
        thread.join(timeout=60)
        assert finished.is_set() and errors == []
        assert revision(engine) == (KERNEL.head(),)
    finally:
        other.dispose()


# -- rows -----------------------------------------------------------------------------------

_SYNC_STATE = {
    "graph": "crm",
    "node": "contacts",
    "cursor": {"watermark": "2024-05-01"},
    "run_id": "r1",
    "updated_at": NOW,
}


def _insert_state(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(SQLModel.metadata.tables["sync_state"]), [_SYNC_STATE])


def _assert_state(engine: Engine) -> None:
    with engine.connect() as conn:
        state = conn.execute(select(SQLModel.metadata.tables["sync_state"])).mappings().one()
    assert state["cursor"] == {"watermark": "2024-05-01"} and state["updated_at"] == NOW
