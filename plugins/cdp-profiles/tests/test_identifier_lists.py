"""Several values of one identifier type on one record (``identifiers={"email": [a, b]}``), on both databases.

Each value is an identifier of its own: the record links all of them to one person, as one record
carrying both would; a blocked or unusable value is dropped alone; every value counts against the
per-type limits; a list of one value is the same as the value.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cdp_core.records import Record
from cdp_core.store.checkpoint import Checkpoint
from sqlalchemy import Engine, select

from cdp_profiles.identity import IdentityConfig
from cdp_profiles.store import tables
from cdp_profiles.store.profiles import ProfileWriter

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_identities = tables.identities
_profiles = tables.profiles


def rec(key: str, minutes: int, **identifiers: str | list[str]) -> Record:
    return Record(stream="crm.contacts", key=key, data={"name": key}, identifiers=identifiers,
                  occurred_at=T0 + timedelta(minutes=minutes))  # fmt: skip


def write(engine: Engine, *records: Record, identity: IdentityConfig | None = None) -> Checkpoint:
    checkpoint = Checkpoint(graph="g", run_id="r", node="store")
    ProfileWriter(engine, identity or IdentityConfig()).write(list(records), checkpoint)
    return checkpoint


def owners(engine: Engine) -> dict[tuple[str, str], str]:
    """(type, value) -> the live profile that owns it."""
    with engine.connect() as conn:
        live = dict(conn.execute(select(_profiles.c.id, _profiles.c.merged_into)).all())
        rows = conn.execute(select(_identities.c.type, _identities.c.value, _identities.c.profile_id)).all()
    return {(t, v): live.get(p) or p for t, v, p in rows}


def live_profiles(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(_profiles.c.id).where(_profiles.c.merged_into.is_(None))).all())


def test_a_record_with_two_emails_merges_the_records_carrying_either(store_engine: Engine) -> None:
    write(store_engine, rec("c1", 0, email="a@x.de"), rec("c2", 1, email="b@x.de"))
    assert live_profiles(store_engine) == 2
    write(store_engine, rec("c3", 2, email=["B@x.de ", "a@x.de"]))
    found = owners(store_engine)
    assert live_profiles(store_engine) == 1
    assert found[("email", "a@x.de")] == found[("email", "b@x.de")]


def test_either_email_later_joins_the_person_of_the_list(store_engine: Engine) -> None:
    write(store_engine, rec("c1", 0, email=["a@x.de", "b@x.de"]))
    write(store_engine, rec("c2", 1, email="b@x.de", phone="+4917112345678"), rec("c3", 2, email="a@x.de"))
    found = owners(store_engine)
    assert live_profiles(store_engine) == 1
    assert found[("phone", "+4917112345678")] == found[("email", "a@x.de")]


def test_a_blocked_value_is_dropped_from_the_list_not_the_record(store_engine: Engine) -> None:
    checkpoint = write(store_engine, rec("c1", 0, email=["test@example.com", "a@x.de", "noreply@shop.de"]))
    assert checkpoint.rejected == []
    assert set(owners(store_engine)) == {("email", "a@x.de")}
    only_blocked = write(store_engine, rec("c2", 1, email=["test@example.com"]))
    assert set(owners(store_engine)) == {("email", "a@x.de")}, "nobody links on a blocked value"
    assert only_blocked.rejected and "no usable identifier" in only_blocked.rejected[0][1].reason


def test_every_value_counts_against_the_limits(store_engine: Engine) -> None:
    identity = IdentityConfig(limits={"email": 2})
    write(store_engine, rec("c1", 0, email=["a@x.de", "b@x.de", "c@x.de"]), identity=identity)
    assert sorted(v for t, v in owners(store_engine)) == ["a@x.de", "b@x.de"], "the third email is over the limit"
    # a record with the third email founds a person of its own: the limit kept it apart
    write(store_engine, rec("c2", 1, email="c@x.de"), identity=identity)
    found = owners(store_engine)
    assert found[("email", "c@x.de")] != found[("email", "a@x.de")]


def test_a_value_the_store_cannot_hold_is_named_with_its_index(store_engine: Engine) -> None:
    checkpoint = write(store_engine, rec("c1", 0, email=["a@x.de", "b\x00@x.de"]))
    assert checkpoint.rejected[0][1].reason.startswith("the store cannot hold identifiers.email[1]: text holds a NUL")


def test_a_list_of_one_value_is_the_value(store_url: str) -> None:
    from cdp_core.store.engine import make_engine

    from cdp_profiles.store.schema import ensure_schema

    def load(as_list: bool) -> tuple[dict[tuple[str, str], str], list[tuple[str, str]]]:
        engine = make_engine(store_url)
        ensure_schema(engine)
        with engine.begin() as conn:  # each run starts from an empty store
            for table in ("identities", "id_set_members", "id_sets", "record_index", "profile_records", "profiles",
                          "merge_log"):  # fmt: skip
                conn.exec_driver_sql(f"DELETE FROM {table}")
        records = [
            rec(f"c{i}", i, email=[f"p{i % 5}@x.de"] if as_list else f"p{i % 5}@x.de", phone=f"+49171123456{i % 7}")
            for i in range(20)
        ]
        write(engine, *records)
        with engine.connect() as conn:
            sets = sorted(conn.execute(select(tables.id_sets.c.id, tables.id_sets.c.profile_id)).all())
        result = owners(engine), [tuple(s) for s in sets]
        engine.dispose()
        return result

    assert load(as_list=True) == load(as_list=False)
