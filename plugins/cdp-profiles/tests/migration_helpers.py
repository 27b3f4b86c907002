"""Helpers shared by the migration tests (test_migrations.py, test_migration_revisions.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command
from cdp_core.store import schema
from cdp_core.store.engine import make_engine
from cdp_core.store.schema import migration_transaction
from cdp_core.testing.databases import revision_of, schema_differences
from sqlalchemy import Engine, MetaData, inspect
from sqlmodel import SQLModel

from cdp_profiles.store.schema import PROFILES

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def forgetting_schema_cache() -> Iterator[None]:
    """For an autouse fixture: each test finds the schema as it is, not as a cache remembers it."""
    schema.forget_schema_cache()
    yield
    schema.forget_schema_cache()


def unmigrated_engine(store_url: str) -> Iterator[Engine]:
    """For a fixture: an engine on the fresh database, with no schema yet."""
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def revision(engine: Engine, version_table: str = PROFILES.version_table) -> tuple[str, ...]:
    """The revision the profile product's history (or the one keeping ``version_table``) is at."""
    return revision_of(engine, version_table)


def alembic_config(conn: sa.Connection | None = None) -> Any:
    return PROFILES.alembic_config(conn)


def head_revision() -> str:
    return PROFILES.head()


def upgrade_to(engine: Engine, revision: str) -> None:
    with migration_transaction(engine) as conn:
        command.upgrade(alembic_config(conn), revision)


def differences(engine: Engine, metadata: MetaData | None = None) -> list[Any]:
    return schema_differences(engine, PROFILES, metadata)


def model_table(name: str) -> sa.Table:
    return SQLModel.metadata.tables[name]
