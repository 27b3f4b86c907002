"""Store database fixtures for test suites: a store per test, on SQLite and on PostgreSQL.

Enable it in a suite's ``conftest.py`` with ``pytest_plugins = ["cdp_core.testing.databases"]``.

``store_url`` runs each test that asks for it twice: on a fresh SQLite file and on
a fresh PostgreSQL database. The PostgreSQL server is the one named by
``CDP_TEST_PG_URL`` (``make test`` starts one with scripts/pgtest.sh and exports
it); without it the suite starts its own with the same script and stops it at
the end of the session. When no server can be had, the PostgreSQL tests error
at setup with the reason: they are never skipped.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import make_url


def _pgtest_script() -> Path | None:
    """scripts/pgtest.sh of the cdp checkout this runs in: searched upwards from here and from the working folder."""
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for folder in (start, *start.parents):
            script = folder / "scripts" / "pgtest.sh"
            if script.is_file():
                return script
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a running PostgreSQL server's scratch database (``postgresql://cdp@127.0.0.1:PORT/cdp_test``).

    Tests that need their own database use ``store_url`` (or ``postgres_database``) instead.
    """
    url = os.environ.get("CDP_TEST_PG_URL")
    if url:
        _check_server(url, "CDP_TEST_PG_URL")
        yield url
        return
    pgtest = _pgtest_script()
    if pgtest is None:
        pytest.fail("no PostgreSQL test server: set CDP_TEST_PG_URL to a server's URL", pytrace=False)
    try:
        done = subprocess.run(
            ["bash", str(pgtest), "start"], capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"cannot start the PostgreSQL test server with {pgtest}: {exc}", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"cannot start the PostgreSQL test server ({pgtest} start exited {done.returncode}):\n{done.stderr}"
            "\nInstall PostgreSQL (initdb and pg_ctl) or point CDP_TEST_PG_URL at a server.",
            pytrace=False,
        )
    values = {}
    for line in done.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        values[key] = value
    folder, url = values.get("CDP_PGTEST_DIR"), values.get("CDP_TEST_PG_URL")
    if not folder or not url:
        pytest.fail(f"{pgtest} start printed no URL:\n{done.stdout}\n{done.stderr}", pytrace=False)
    try:
        _check_server(url, "the server scripts/pgtest.sh started")
        yield url
    finally:
        subprocess.run(["bash", str(pgtest), "stop", folder], capture_output=True, stdin=subprocess.DEVNULL)


def _check_server(url: str, what: str) -> None:
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(f"cannot connect to PostgreSQL at {url} ({what}): {exc}", pytrace=False)


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (from template0), dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name)))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE: engines a test left open (pooled connections) must not keep the database alive.
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to a fresh, empty store database: ``sqlite:///{tmp_path}/store.sqlite`` or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.sqlite"
    return request.getfixturevalue("postgres_database")


@pytest.fixture
def store_engine(store_url: str) -> Iterator[Engine]:
    """An engine on ``store_url`` with the kernel's schema at head, disposed afterwards.

    A plugin with tables of its own overrides this fixture in its conftest.py to bring
    its history to head too.
    """
    from cdp_core.store.engine import make_engine
    from cdp_core.store.schema import create_schema

    engine = make_engine(store_url)
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db_backend(store_url: str) -> str:
    """``"sqlite"`` or ``"postgresql"``: which database ``store_url`` points at."""
    return "sqlite" if store_url.startswith("sqlite") else "postgresql"


# -- migration histories: what a plugin with tables of its own tests ----------------------------


def schema_differences(engine: Engine, history: Any, metadata: Any = None) -> list[Any]:
    """What alembic's autogenerate finds between ``history``'s tables in the database and their models.

    Empty when the migrations and the models agree: a plugin's suite asserts it after
    bringing a fresh database to head (``cdp_core.store.schema.create_schema``).

    :param history: a :class:`cdp_core.store.schema.History`.
    :param metadata: the models to compare with (default: SQLModel's metadata).
    """
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    from cdp_core.store.schema import compare_server_default

    history.import_models()  # a model not imported would read as a table to drop
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_object": history.include_object,
                "compare_type": True,
                "compare_server_default": compare_server_default,
            },
        )
        return list(compare_metadata(context, metadata if metadata is not None else SQLModel.metadata))


def revision_of(engine: Engine, version_table: str) -> tuple[str, ...]:
    """The revision(s) the history keeping ``version_table`` is at in the database (empty: none)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return tuple(MigrationContext.configure(conn, opts={"version_table": version_table}).get_current_heads())
