"""The store keeps the newest version of each record, whatever order the versions arrive in.

A vendor's webhook may arrive after a pull already stored a newer version of the same
record (Shopify says deliveries can come out of order); a pull may run behind a push.
A version older than the stored one (by ``occurred_at``) does not replace it, and is counted
as a warning on the node; within one batch the newer of two versions wins.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cdp_core.records import Record, RecordKind
from cdp_core.store.checkpoint import Checkpoint
from sqlalchemy import Engine, select

from cdp_profiles.identity import IdentityConfig
from cdp_profiles.store import tables
from cdp_profiles.store.profiles import ProfileWriter

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STALE = "an older version of a stored record: the newer one is kept"


def version(name: str, minutes: int | None, key: str = "c1") -> Record:
    when = None if minutes is None else T0 + timedelta(minutes=minutes)
    return Record(stream="shop.customers", key=key, kind=RecordKind.profile, data={"first_name": name},
                  identifiers={"email": "bob@example.org"}, occurred_at=when)  # fmt: skip


def write(engine: Engine, *records: Record) -> Checkpoint:
    checkpoint = Checkpoint(graph="g", run_id="r", node="store")
    ProfileWriter(engine, IdentityConfig()).write(list(records), checkpoint)
    return checkpoint


def stored(engine: Engine) -> tuple[str, dict[str, object]]:
    with engine.connect() as conn:
        data = conn.execute(select(tables.profile_records.c.data)).scalar_one()
        traits = conn.execute(select(tables.profiles.c.traits)).scalar_one()
    return data["first_name"], traits


def test_a_late_older_version_does_not_replace_the_newer(store_engine: Engine) -> None:
    write(store_engine, version("Robert", 10))
    late = write(store_engine, version("Bob", 5))  # a webhook from before the change, delivered late
    name, traits = stored(store_engine)
    assert name == "Robert" and traits["first_name"] == "Robert"
    assert late.warnings == {("store", STALE): 1}
    newer = write(store_engine, version("Rob", 20))
    assert stored(store_engine)[0] == "Rob" and newer.warnings == {}


def test_within_a_batch_the_newer_version_wins_in_either_order(store_engine: Engine) -> None:
    write(store_engine, version("Robert", 10), version("Bob", 5))
    assert stored(store_engine)[0] == "Robert"


def test_a_version_without_a_time_always_replaces(store_engine: Engine) -> None:
    write(store_engine, version("Robert", 10))
    write(store_engine, version("Bobby", None))
    assert stored(store_engine)[0] == "Bobby"
