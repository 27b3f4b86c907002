"""The profile product's migration history (cdp_profiles/store/migrations/) on top of the kernel's.

Every test runs on SQLite and on PostgreSQL (``store_url``). The kernel's migration
machinery (locks, concurrency, adoption) is tested in the core suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from cdp_core.store import schema
from cdp_core.store.engine import make_engine
from cdp_core.store.schema import KERNEL, SchemaError, create_schema
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

from cdp_profiles.store.schema import PROFILES, ensure_schema

BASELINE = PROFILES.baseline
BASELINE_TABLES = PROFILES.baseline_tables
SYSTEM_TABLES = KERNEL.tables()
VERSION_TABLES = {KERNEL.version_table, PROFILES.version_table}


def store_tables() -> frozenset[str]:
    return KERNEL.tables() | PROFILES.tables()


@pytest.fixture(autouse=True)
def _forget_cache() -> Iterator[None]:
    yield from forgetting_schema_cache()


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    yield from unmigrated_engine(store_url)


PRE_MIGRATION_TABLES = BASELINE_TABLES | {"sync_state", "sync_runs", "quarantine"}
"""What ``SQLModel.metadata.create_all`` made before migrations existed: no leases yet."""


def _make_pre_migration_database(engine: Engine, tables: frozenset[str] = PRE_MIGRATION_TABLES) -> None:
    """What ``SQLModel.metadata.create_all`` made before migrations existed, without any version table.

    The models of that time are the baseline revisions' tables: they are taken by
    reflection from a database at the baselines, so the test stays true once later
    revisions change the models.
    """
    create_schema(engine)
    upgrade_to(engine, BASELINE)
    baseline = MetaData()
    baseline.reflect(engine, only=sorted(PRE_MIGRATION_TABLES))
    with engine.begin() as conn:
        for table in reversed(baseline.sorted_tables):
            table.drop(conn)
    with engine.begin() as conn:  # what later revisions of either history added (leases, the ingest log...)
        for name in sorted(table_names(engine)):
            conn.execute(text(f"DROP TABLE {name}"))
    assert table_names(engine) == set()
    baseline.create_all(engine, tables=[baseline.tables[name] for name in sorted(tables)])
    schema.forget_schema_cache()


# -- fresh databases ------------------------------------------------------------------------


def test_a_fresh_database_gets_every_table_at_head(engine: Engine) -> None:
    ensure_schema(engine)
    assert table_names(engine) == store_tables() | VERSION_TABLES
    assert BASELINE_TABLES - {"traits"} <= store_tables()  # 0005 folded traits into profiles.traits
    assert revision(engine) == (PROFILES.head(),)


def test_revision_0001_creates_exactly_the_baseline_tables(engine: Engine) -> None:
    upgrade_to(engine, BASELINE)
    assert table_names(engine) == BASELINE_TABLES | {PROFILES.version_table}
    assert revision(engine) == (BASELINE,)
    columns = {c["name"]: c for c in inspect(engine).get_columns("orders")}
    assert isinstance(columns["amount"]["type"], sa.Numeric)
    assert (columns["amount"]["type"].precision, columns["amount"]["type"].scale) == (18, 4)


def test_migrating_from_the_baseline_keeps_every_row(engine: Engine) -> None:
    create_schema(engine)
    upgrade_to(engine, BASELINE)
    _insert_rows(engine)
    ensure_schema(engine)
    assert revision(engine) == (PROFILES.head(),)
    _assert_rows(engine)


# -- the models are the migrations ----------------------------------------------------------


def test_the_migrated_schema_matches_the_models(engine: Engine) -> None:
    """A model change without a migration fails here: write one (docs/store.md)."""
    ensure_schema(engine)
    assert differences(engine) == []


def test_the_comparison_sees_a_model_change(engine: Engine) -> None:
    ensure_schema(engine)
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
    ensure_schema(engine)
    assert "crm_contacts" in table_names(engine)
    assert differences(engine) == []


# -- idempotence and the fast path ----------------------------------------------------------


def test_ensure_schema_twice_is_a_no_op(engine: Engine, monkeypatch: pytest.MonkeyPatch, db_backend: str) -> None:
    ensure_schema(engine)
    _insert_rows(engine)

    def no_alembic(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("alembic ran on a database already at head")

    monkeypatch.setattr(command, "upgrade", no_alembic)
    monkeypatch.setattr(command, "stamp", no_alembic)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    ensure_schema(engine)
    if db_backend == "postgresql":
        assert statements == []  # remembered in-process: not even a query
        schema.forget_schema_cache()
        ensure_schema(engine)
    assert statements == [f"SELECT version_num FROM {t}" for t in (KERNEL.version_table, PROFILES.version_table)]
    _assert_rows(engine)

    # another engine on the same database (SystemStore and the profile store each have one)
    other = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        ensure_schema(other)
    finally:
        other.dispose()


def test_a_database_from_a_newer_release_is_refused(engine: Engine) -> None:
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {PROFILES.version_table} SET version_num = '9999'"))
    schema.forget_schema_cache()  # a process that starts after the newer release upgraded the database
    with pytest.raises(SchemaError, match="profiles schema revision '9999'.*upgrade profiles"):
        ensure_schema(engine)


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

    ensure_schema(engine)

    assert stamped == [BASELINE]
    assert revision(engine) == (PROFILES.head(),)
    _assert_rows(engine)
    assert differences(engine) == []


def test_a_database_with_only_some_baseline_tables_gets_the_missing_ones(engine: Engine) -> None:
    # a store made by the first cdp versions, which had only the system tables
    _make_pre_migration_database(engine, frozenset({"sync_state", "sync_runs", "quarantine"}))
    with engine.begin() as conn:
        conn.execute(insert(model_table("sync_state")), [_SYNC_STATE])
    ensure_schema(engine)
    assert table_names(engine) == store_tables() | VERSION_TABLES
    assert revision(engine) == (PROFILES.head(),)
    assert differences(engine) == []
    with engine.connect() as conn:
        assert conn.execute(select(model_table("sync_state").c.cursor)).scalar_one() == {"watermark": "2024-05-01"}


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


# -- stores written before the kernel and the product had a history each -------------------


def _value(column: sa.Column[Any], n: int) -> Any:
    """A value of the column's type, different per table (n), for a row that only has to exist."""
    kind = column.type
    kind = getattr(kind, "impl_instance", kind)  # SQLModel's types decorate SQLAlchemy's
    if isinstance(kind, sa.JSON):
        return {"table": n, "list": [1, "two"]}
    if isinstance(kind, sa.Boolean):
        return True
    if isinstance(kind, sa.DateTime):
        return NOW
    if isinstance(kind, sa.Numeric):
        return Decimal("19.9900")
    if isinstance(kind, sa.Integer):
        return n + 1
    return f"v{n}"


def _a_row_in_every_table(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """A row in every store table the database holds, in the columns it has (an older revision's)."""
    present = table_names(engine)
    tables = [t for t in SQLModel.metadata.sorted_tables if t.name in store_tables() and t.name in present]
    with engine.begin() as conn:
        for n, table in enumerate(tables):
            there = {c["name"] for c in inspect(conn).get_columns(table.name)}
            conn.execute(insert(table), [{c.name: _value(c, n) for c in table.columns if c.name in there}])
    return _every_row(engine)


def _every_row(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    present = table_names(engine)
    with engine.connect() as conn:
        out = {}
        for t in SQLModel.metadata.sorted_tables:
            if t.name in store_tables() and t.name in present:
                there = {c["name"] for c in inspect(conn).get_columns(t.name)}
                columns = [c for c in t.columns if c.name in there]
                out[t.name] = [dict(r) for r in conn.execute(select(*columns)).mappings()]
        return out


@pytest.mark.parametrize("at", ["0007", "0002"])
def test_a_store_of_the_single_history_upgrades_in_place_with_every_row(engine: Engine, at: str) -> None:
    """A store the previous release wrote keeps its revision in ``alembic_version`` (kernel and product in one).

    At 0007 (the previous release's head; the single history ended there) a row in every one of
    its tables must come through the product's later revisions. At 0002 (before leases) the
    kernel's history adds the lease table and the product's history runs 0003 onwards from there.
    """
    ensure_schema(engine)
    downgrade_to(engine, LAST_SINGLE_HISTORY)  # the tables of later revisions were not there yet
    with engine.begin() as conn:
        for table in (*VERSION_TABLES, "ingest_log"):  # the kernel's later revisions' tables were not there either
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0007')"))
    if at == "0002":
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE sync_leases"))
    upgrade_to_single_history(engine, at)
    before = _a_row_in_every_table(engine) if at == "0007" else None
    if at == "0002":
        _insert_rows(engine)
    schema.forget_schema_cache()

    ensure_schema(engine)

    assert table_names(engine) == store_tables() | VERSION_TABLES
    assert "alembic_version" not in table_names(engine)
    assert revision(engine) == (PROFILES.head(),)
    assert revision(engine, KERNEL.version_table) == (KERNEL.head(),)
    assert differences(engine) == []
    if before is not None:
        # every row as it was; a column added since (profile_records.traits, 0009) is NULL
        after = _every_row(engine)
        kept = {t: [{k: v for k, v in row.items() if k in before[t][0]} for row in rows] for t, rows in after.items() if t in before}
        assert kept == before
        assert after["profile_records"][0]["traits"] is None, after["profile_records"]
        assert all(len(rows) == 1 for rows in before.values())
        assert set(after) - set(before) == store_tables() - set(before)  # the later revisions' tables, empty
        assert not any(after[name] for name in set(after) - set(before))
    else:
        _assert_rows(engine)


LAST_SINGLE_HISTORY = "0007"
"""The newest revision of the single history (``alembic_version``), the previous release's head."""


def downgrade_to(engine: Engine, at: str) -> None:
    with schema.migration_transaction(engine) as conn:
        command.downgrade(PROFILES.alembic_config(conn), at)
    schema.forget_schema_cache()


def upgrade_to_single_history(engine: Engine, at: str) -> None:
    """Take the product's tables down to ``at`` while ``alembic_version`` names it, as the single history did."""
    from alembic.runtime.migration import MigrationContext
    from cdp_core.store.schema import migration_transaction

    with migration_transaction(engine) as conn:
        config = PROFILES.alembic_config(conn)
        # the product's history reads its revision from its own table: lend it the old one for the walk down
        conn.execute(text(f"CREATE TABLE {PROFILES.version_table} (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        # the caller took the tables down to the single history's last revision already
        conn.execute(text(f"INSERT INTO {PROFILES.version_table} (version_num) VALUES ('{LAST_SINGLE_HISTORY}')"))
        command.downgrade(config, at)
        assert MigrationContext.configure(conn, opts={"version_table": PROFILES.version_table}).get_current_heads() == (
            at,
        )
        conn.execute(text(f"DROP TABLE {PROFILES.version_table}"))
        conn.execute(text(f"UPDATE alembic_version SET version_num = '{at}'"))
