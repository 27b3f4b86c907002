"""The store's schema under alembic migrations (cdp_core/store/schema.py, cdp_core/store/migrations/).

Every test runs on SQLite and on PostgreSQL (``store_url``).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from migration_helpers import (
    NOW,
    differences,
    forgetting_schema_cache,
    model_table,
    revision,
    table_names,
    unmigrated_engine,
    upgrade_to,
)
from sqlalchemy import Engine, MetaData, event, insert, inspect, select, text
from sqlmodel import SQLModel

from cdp_core.store import schema
from cdp_core.store.engine import make_engine
from cdp_core.store.schema import (
    BASELINE,
    BASELINE_TABLES,
    SchemaError,
    create_schema,
    head_revision,
    migration_transaction,
    store_tables,
)

SYSTEM_TABLES = {"sync_state", "sync_runs", "quarantine"}


@pytest.fixture(autouse=True)
def _forget_cache() -> Iterator[None]:
    yield from forgetting_schema_cache()


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    yield from unmigrated_engine(store_url)


def _make_pre_migration_database(engine: Engine, tables: set[str] = BASELINE_TABLES) -> None:
    """What ``SQLModel.metadata.create_all`` made before migrations existed, without an alembic_version.

    The models of that time are the baseline revision's tables: they are taken by
    reflection from a database at 0001, so the test stays true once later revisions
    change the models.
    """
    upgrade_to(engine, BASELINE)
    baseline = MetaData()
    baseline.reflect(engine, only=sorted(BASELINE_TABLES))
    with engine.begin() as conn:
        for table in reversed(baseline.sorted_tables):
            table.drop(conn)
        conn.execute(text("DROP TABLE alembic_version"))
    assert table_names(engine) == set()
    baseline.create_all(engine, tables=[baseline.tables[name] for name in sorted(tables)])


# -- fresh databases ------------------------------------------------------------------------


def test_a_fresh_database_gets_every_table_at_head(engine: Engine) -> None:
    create_schema(engine)
    assert table_names(engine) == store_tables() | {"alembic_version"}
    assert BASELINE_TABLES - {"traits"} <= store_tables()  # 0005 folded traits into profiles.traits
    assert revision(engine) == (head_revision(),)


def test_revision_0001_creates_exactly_the_baseline_tables(engine: Engine) -> None:
    upgrade_to(engine, BASELINE)
    assert table_names(engine) == BASELINE_TABLES | {"alembic_version"}
    assert revision(engine) == (BASELINE,)
    columns = {c["name"]: c for c in inspect(engine).get_columns("orders")}
    assert isinstance(columns["amount"]["type"], sa.Numeric)
    assert (columns["amount"]["type"].precision, columns["amount"]["type"].scale) == (18, 4)


def test_migrating_from_the_baseline_keeps_every_row(engine: Engine) -> None:
    upgrade_to(engine, BASELINE)
    _insert_rows(engine)
    create_schema(engine)
    assert revision(engine) == (head_revision(),)
    _assert_rows(engine)


# -- the models are the migrations ----------------------------------------------------------


def test_the_migrated_schema_matches_the_models(engine: Engine) -> None:
    """A model change without a migration fails here: write one (docs/store.md)."""
    create_schema(engine)
    assert differences(engine) == []


def test_the_comparison_sees_a_model_change(engine: Engine) -> None:
    create_schema(engine)
    changed = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["consents"].append_column(sa.Column("channel", sa.String(), nullable=True))
    sa.Index("ix_consents_purpose", changed.tables["consents"].c.purpose)
    changed.tables["orders"].c.amount.type = sa.Numeric(12, 2)
    kinds = {_kind(diff) for diff in differences(engine, changed)}
    assert {"add_column", "add_index", "modify_type"} <= kinds


def _kind(diff: Any) -> str:
    first = diff[0] if isinstance(diff, list) else diff
    return first[0]


def test_other_tables_in_the_same_database_are_left_alone(engine: Engine) -> None:
    # a destination may write its own tables into the store's database
    other = MetaData()
    sa.Table("crm_contacts", other, sa.Column("id", sa.Integer, primary_key=True))
    other.create_all(engine)
    create_schema(engine)
    assert "crm_contacts" in table_names(engine)
    assert differences(engine) == []


# -- idempotence and the fast path ----------------------------------------------------------


def test_create_schema_twice_is_a_no_op(engine: Engine, monkeypatch: pytest.MonkeyPatch, db_backend: str) -> None:
    create_schema(engine)
    _insert_rows(engine)

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
    assert statements == ["SELECT version_num FROM alembic_version"]
    _assert_rows(engine)

    # another engine on the same database (SystemStore and the profile store each have one)
    other = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        create_schema(other)
    finally:
        other.dispose()


def test_a_database_from_a_newer_cdp_is_refused(engine: Engine) -> None:
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    schema.forget_schema_cache()  # a process that starts after the newer cdp upgraded the database
    with pytest.raises(SchemaError, match="'9999'.*upgrade cdp"):
        create_schema(engine)


def test_a_failing_migration_rolls_back_whole(engine: Engine) -> None:
    # what a migration that breaks halfway leaves behind: nothing (SQLite too: BEGIN IMMEDIATE)
    with pytest.raises(RuntimeError, match="halfway"), migration_transaction(engine) as conn:
        conn.execute(text("CREATE TABLE half_done (id INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO half_done (id) VALUES (1)"))
        raise RuntimeError("halfway")
    assert "half_done" not in table_names(engine)


# -- databases made before migrations existed -----------------------------------------------


def test_a_pre_migration_database_is_stamped_and_keeps_its_rows(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _make_pre_migration_database(engine)
    _insert_rows(engine)
    stamped: list[str] = []
    real_stamp = command.stamp
    monkeypatch.setattr(
        command, "stamp", lambda config, revision, **kw: (stamped.append(revision), real_stamp(config, revision, **kw))
    )

    create_schema(engine)

    assert stamped == [BASELINE]
    assert revision(engine) == (head_revision(),)
    _assert_rows(engine)
    assert differences(engine) == []


def test_a_database_with_only_some_baseline_tables_gets_the_missing_ones(engine: Engine) -> None:
    # a store made by the first cdp versions, which had only the system tables
    _make_pre_migration_database(engine, SYSTEM_TABLES)
    with engine.begin() as conn:
        conn.execute(insert(model_table("sync_state")), [_SYNC_STATE])
    create_schema(engine)
    assert table_names(engine) == store_tables() | {"alembic_version"}
    assert revision(engine) == (head_revision(),)
    assert differences(engine) == []
    with engine.connect() as conn:
        assert conn.execute(select(model_table("sync_state").c.cursor)).scalar_one() == {"watermark": "2024-05-01"}


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
        assert table_names(engines[0]) == store_tables() | {"alembic_version"}
        assert revision(engines[0]) == (head_revision(),)
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
    assert table_names(engine) == store_tables() | {"alembic_version"}
    assert revision(engine) == (head_revision(),)


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
            time.sleep(1.0)
            assert not finished.is_set(), "create_schema did not wait for the migration lock"
        thread.join(timeout=60)
        assert finished.is_set() and errors == []
        assert revision(engine) == (head_revision(),)
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


def _baseline_table(name: str, *columns: sa.ColumnClause[Any]) -> sa.TableClause:
    """Only the columns a baseline table has, so inserting works at every revision since."""
    return sa.table(name, *columns)


def _insert_rows(engine: Engine) -> None:
    """A row in a few baseline tables."""
    at = sa.DateTime(timezone=True)
    quarantine = _baseline_table(
        "quarantine",
        *(sa.column(c) for c in ("run_id", "graph", "node", "reason", "fingerprint")),
        sa.column("payload", sa.JSON),
        sa.column("created_at", at),
    )
    record_index = _baseline_table(
        "record_index", *(sa.column(c) for c in ("stream", "key", "kind", "set_id")), sa.column("updated_at", at)
    )
    orders = _baseline_table(
        "orders",
        *(sa.column(c) for c in ("stream", "key", "order_id", "currency")),
        sa.column("amount", sa.Numeric(18, 4)),
    )
    with engine.begin() as conn:
        conn.execute(insert(model_table("sync_state")), [_SYNC_STATE])
        conn.execute(
            insert(quarantine),
            [
                {
                    "run_id": "r1",
                    "graph": "crm",
                    "node": "contacts",
                    "reason": "missing id",
                    "fingerprint": "fp1",
                    "payload": {"id": ""},
                    "created_at": NOW,
                }
            ],
        )
        conn.execute(
            insert(record_index),
            [{"stream": "crm", "key": "1", "kind": "profile", "set_id": "set-1", "updated_at": NOW}],
        )
        conn.execute(
            insert(orders),
            [{"stream": "shop", "key": "o1", "order_id": "o1", "currency": "EUR", "amount": Decimal("19.9900")}],
        )


def _assert_rows(engine: Engine) -> None:
    with engine.connect() as conn:
        state = conn.execute(select(model_table("sync_state"))).mappings().one()
        assert state["cursor"] == {"watermark": "2024-05-01"} and state["updated_at"] == NOW
        quarantined = conn.execute(select(model_table("quarantine"))).mappings().one()
        assert (quarantined["fingerprint"], quarantined["payload"]) == ("fp1", {"id": ""})
        indexed = conn.execute(select(model_table("record_index"))).mappings().one()
        assert (indexed["stream"], indexed["key"], indexed["set_id"]) == ("crm", "1", "set-1")
        amount = conn.execute(select(model_table("orders").c.amount)).scalar_one()
        assert Decimal(amount) == Decimal("19.99")
