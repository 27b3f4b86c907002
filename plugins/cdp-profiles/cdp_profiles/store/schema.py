"""The profile product's migration history and the one call that brings a store to it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cdp_core.store.schema import History, create_schema
from sqlalchemy import Engine

WRITE_LOCK = "cdp profiles"
"""The lock every writer of the profile tables names (``write_transaction(engine, lock=WRITE_LOCK)``).

On PostgreSQL it makes the store's writers run one at a time, as SQLite does for any writer: a
sync's batch, ``cdp serve``'s, a segment refresh, a forget and the retention sweep each decide from
what they read (who owns an identifier, which records a person has) and must not interleave.
"""

PROFILES = History(
    name="profiles",
    script_location=Path(__file__).resolve().with_name("migrations"),
    version_table="cdp_profiles_version",
    models="cdp_profiles.store.",
    baseline="0001",
    # The tables revision 0001 creates: what a database made by ``create_all`` before
    # migrations existed holds (or part of it). Frozen, like 0001: ``traits`` stays although
    # no model defines it any more (0005 folds it into ``profiles.traits`` and drops it).
    baseline_tables=frozenset(
        {
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
    ),
    # Before the kernel and the product had a history each, one history in alembic's
    # default table held both; its revisions are this history's (0001-0007).
    previous_version_table="alembic_version",
    model_modules=tuple(
        f"cdp_profiles.store.{name}" for name in ("profile_models", "segment_models", "privacy_models", "audience_models")
    ),
)
"""The profile tables: profiles, identities, records by kind, traits, merge log, audience mirrors, privacy."""


def ensure_schema(engine: Engine) -> None:
    """Bring ``engine``'s database to the kernel's and the profile product's newest schema."""
    create_schema(engine, PROFILES)


@contextmanager
def job_store(config: Any) -> Iterator[Engine]:
    """The store of a loaded config, brought to the newest schema, for a scheduler job; disposed after."""
    from cdp_core.store.engine import make_engine

    engine = make_engine(config.store_url)
    try:
        ensure_schema(engine)
        yield engine
    finally:
        engine.dispose()
