"""Opening the store for a command, and every way it can fail as one line of text.

Write commands (``cdp sync``, ``cdp scheduler run``) create the store when it is
missing; read commands (``cdp runs``, ``cdp quarantine list``, ``cdp scheduler
status``, the profile product's ``cdp profiles`` and ``cdp nps``) never do: a
missing SQLite file, a missing folder or a database without cdp's tables is
:class:`StoreUnavailable`, and nothing is written. A file that is no database, a
folder in the file's place, a lock held too long, an unreachable server or a
store written by a newer release (:class:`~cdp_core.store.schema.SchemaError`)
each become one line from :func:`describe_store_error`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from cdp_core.store.engine import busy_timeout, make_engine, normalize_url
from cdp_core.store.schema import KERNEL, History, SchemaError, create_schema


class StoreUnavailable(Exception):
    """The store cannot be used; the message says why and where, in one line."""


class StoreMissing(StoreUnavailable):
    """A read command found no store (no file, or a database without cdp's tables); nothing was created."""


def shown_url(url: str) -> str:
    """The store URL for a message: no password."""
    try:
        return make_url(normalize_url(url)).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL that does not parse is shown by its scheme only
        return url.split(":", 1)[0] + "://..."


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite store URL (None: in memory, a URI filename, or not SQLite)."""
    parsed = make_url(normalize_url(url))
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def open_store(url: str, histories: Iterable[History] = (), *, create: bool) -> Engine:
    """An engine on the store at ``url``, brought to the schema of the kernel and ``histories``.

    :param create: True (write commands): make the store if it is missing. False (read
        commands): a missing store raises :class:`StoreUnavailable` and nothing is created.
    :raises StoreUnavailable: for every failure, with a one-line message.
    """
    where = shown_url(url)
    path = sqlite_path(url)
    if path is not None:
        if path.is_dir():
            raise StoreUnavailable(f"the store {path} is a folder, not a SQLite database file")
        if not create and not path.exists():
            raise StoreMissing(f"no store at {path}: nothing has been synced yet (run `cdp sync` first)")
    try:
        engine = make_engine(url, create_folder=create)
    except Exception as exc:  # noqa: BLE001 - a driver that is not installed, a URL SQLAlchemy refuses
        raise StoreUnavailable(f"cannot open the store {where}: {_first_line(exc)}") from None
    try:
        if not create:
            with engine.connect() as conn:
                tables = set(inspect(conn).get_table_names())
            if KERNEL.version_table not in tables and not KERNEL.baseline_tables <= tables:
                raise StoreMissing(
                    f"no cdp store in {path or where}: it holds no cdp tables (nothing has been synced yet: run `cdp sync` first)"
                )
        create_schema(engine, *histories)
    except StoreUnavailable:
        engine.dispose()
        raise
    except (SQLAlchemyError, SchemaError, OSError) as exc:
        engine.dispose()
        raise StoreUnavailable(describe_store_error(exc, url)) from None
    return engine


def describe_store_error(exc: BaseException, url: str) -> str:
    """One line saying why the store at ``url`` cannot be used (no SQL, no parameters, no password)."""
    if isinstance(exc, StoreUnavailable):
        return str(exc)
    where = _where(url)
    if isinstance(exc, SchemaError):
        return f"the store {where}: {exc}"
    text = _first_line(getattr(exc, "orig", None) or exc)
    lowered = text.lower()
    if "file is not a database" in lowered or "database disk image is malformed" in lowered:
        return f"the store {where} is not a SQLite database (a corrupt file, or another kind of file): {text}"
    if "database is locked" in lowered or "database table is locked" in lowered:
        return f"the store {where} is locked by another process (waited {busy_timeout():g}s, CDP_STORE_BUSY_TIMEOUT): {text}"
    if "unable to open database file" in lowered or "readonly database" in lowered:
        return f"cannot open the store {where}: {text} (check the folder exists and is writable)"
    if url.startswith(("postgres", "postgresql")):
        return f"cannot use the store database {where}: {text}"
    return f"the store {where} cannot be used: {text}"


def _where(url: str) -> str:
    if not url:
        return "database"
    try:
        return str(sqlite_path(url) or shown_url(url))
    except Exception:  # noqa: BLE001 - never fail while describing a failure
        return shown_url(url)


def _first_line(exc: object) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
