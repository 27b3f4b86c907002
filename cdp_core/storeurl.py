"""``[store] url``: where a relative SQLite file lives, and what makes a URL unusable.

Kept apart from config.py: the rules are the store's (which databases and drivers cdp
ships, where a SQLite file goes), and the config only reports what they find.
"""

from __future__ import annotations

import os
from pathlib import Path

from cdp_core.keypaths import did_you_mean


def resolve_store_url(url: str, base_dir: Path) -> str:
    """``url`` with a relative SQLite file made absolute under ``base_dir``.

    Resolved against the working directory instead, one config run from two folders
    would write two stores, and a config in another folder run from here would write
    here. ``sqlite:////abs/path``, in-memory SQLite and every other database are unchanged.
    """
    from sqlalchemy.engine import make_url  # here: the config module is imported by `cdp --help`

    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if database.startswith("file:") or Path(database).is_absolute():
        return url  # a SQLite URI filename (uri=true) or an absolute path: taken as written
    return parsed.set(database=str(base_dir / database)).render_as_string(hide_password=False)


SQLITE_DRIVERS = frozenset({"pysqlite"})
POSTGRESQL_DRIVERS = frozenset({"psycopg"})


def check_store_url(url: str, base_dir: Path) -> str | None:
    """What is wrong with a ``[store] url`` (scheme, driver, SQLite folder), or None.

    Only ``sqlite`` (the sqlite3 module) and ``postgresql`` (psycopg 3, which cdp
    ships; ``postgres://`` and ``postgresql+psycopg2://`` mean it too) are supported.
    A SQLite file's folder must exist or be creatable; the file itself may be missing
    (a sync creates it). What is in the file's place, and whether a server answers, is
    found when a command opens the store (``cdp_core.store.access``).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from cdp_core.store.engine import normalize_url

    try:
        parsed = make_url(normalize_url(url))
    except (ArgumentError, ValueError):
        return "not a database URL: use sqlite:///PATH (relative to this file), sqlite:////ABSOLUTE/PATH or postgresql://USER@HOST/DATABASE"
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend not in ("sqlite", "postgresql"):
        return f"unsupported database {backend!r}{did_you_mean(backend, ['sqlite', 'postgresql'])}: use sqlite:///PATH or postgresql://USER@HOST/DATABASE"
    allowed = SQLITE_DRIVERS if backend == "sqlite" else POSTGRESQL_DRIVERS
    if driver not in allowed:
        return f"unsupported driver {driver!r} for {backend}: cdp ships {', '.join(sorted(allowed))} (write {backend}://...)"
    if backend == "postgresql":
        if not parsed.database:
            return "names no database: postgresql://USER@HOST/DATABASE"
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database) if Path(database).is_absolute() else base_dir / database
    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot create the folder {folder}: {existing} is a file"
    if existing != folder and not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot create the folder {folder}: {existing} is not writable"
    return None
