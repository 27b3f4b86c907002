"""Tombstones (``Record.deleted``) in the profile store, on both databases.

The store removes the deleted record and recomputes its person from the records that remain:
identifiers only that record brought are released, traits fall back to the next record, the
merge log has a ``record_deleted`` entry; a tombstone older than the stored version deletes
nothing; one for an unknown record is counted, unless it is marked ``missing_ok`` (a vendor deletion
that may name a record never synced); the record delivered again is stored again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cdp_core.records import Record, RecordKind
from cdp_core.store.checkpoint import Checkpoint
from sqlalchemy import Engine, select

from cdp_profiles.identity import IdentityConfig
from cdp_profiles.store import tables
from cdp_profiles.store.profiles import STALE_DELETION, UNKNOWN_DELETION, ProfileWriter

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_identities = tables.identities
_profiles = tables.profiles
_records = tables.profile_records
_log = tables.merge_log


def rec(stream: str, key: str, minutes: int, city: str | None = None, **identifiers: str) -> Record:
    data = {"city": city} if city else {}
    return Record(stream=stream, key=key, data=data, identifiers=identifiers,
                  occurred_at=T0 + timedelta(minutes=minutes))  # fmt: skip


def gone(stream: str, key: str, minutes: int | None, kind: RecordKind = RecordKind.profile, **flags: bool) -> Record:
    when = None if minutes is None else T0 + timedelta(minutes=minutes)
    return Record(stream=stream, key=key, kind=kind, deleted=True, occurred_at=when, **flags)


def write(engine: Engine, *records: Record) -> Checkpoint:
    checkpoint = Checkpoint(graph="g", run_id="r", node="store")
    ProfileWriter(engine, IdentityConfig()).write(list(records), checkpoint)
    return checkpoint


def people(engine: Engine) -> dict[str, tuple[set[tuple[str, str]], dict[str, object]]]:
    """Live profile -> (its identifiers, its traits)."""
    with engine.connect() as conn:
        live = {r.id: r.traits for r in conn.execute(select(_profiles).where(_profiles.c.merged_into.is_(None)))}
        out: dict[str, tuple[set[tuple[str, str]], dict[str, object]]] = {p: (set(), t) for p, t in live.items()}
        for t, v, p in conn.execute(select(_identities.c.type, _identities.c.value, _identities.c.profile_id)):
            out[p][0].add((t, v))
    return out


def stored_keys(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {r.key for r in conn.execute(select(_records.c.key))}


def test_a_deleted_record_releases_what_only_it_brought_and_traits_fall_back(store_engine: Engine) -> None:
    write(store_engine, rec("crm.contacts", "c1", 0, city="Bonn", email="a@x.de"),
          rec("shop.customers", "s1", 5, city="Köln", email="a@x.de", phone="+4917112345678"))  # fmt: skip
    [(ids, traits)] = people(store_engine).values()
    assert ids == {("email", "a@x.de"), ("phone", "+4917112345678")} and traits["city"] == "Köln"
    checkpoint = write(store_engine, gone("shop.customers", "s1", 10))
    assert checkpoint.warnings == {} and stored_keys(store_engine) == {"c1"}
    [(pid, (ids, traits))] = people(store_engine).items()
    assert ids == {("email", "a@x.de")}, "the phone only the deleted record carried is released"
    assert traits["city"] == "Bonn", "the trait falls back to the remaining record"
    with store_engine.connect() as conn:
        [entry] = conn.execute(select(_log)).all()
    assert entry.winner == pid and entry.loser == pid and entry.record == "shop.customers|s1"
    assert entry.reason.startswith("record_deleted")
    # the released phone now founds a person of its own
    write(store_engine, rec("shop.customers", "s2", 20, phone="+4917112345678"))
    assert len(people(store_engine)) == 2


def test_a_person_with_no_record_left_is_removed_and_redelivery_restores(store_engine: Engine) -> None:
    write(store_engine, rec("crm.contacts", "c1", 0, city="Bonn", email="a@x.de"))
    write(store_engine, gone("crm.contacts", "c1", 5))
    assert people(store_engine) == {} and stored_keys(store_engine) == set()
    write(store_engine, rec("crm.contacts", "c1", 10, city="Bonn", email="a@x.de"))  # the vendor restored it
    [(ids, traits)] = people(store_engine).values()
    assert ids == {("email", "a@x.de")} and traits["city"] == "Bonn"


def test_a_tombstone_older_than_the_stored_version_deletes_nothing(store_engine: Engine) -> None:
    write(store_engine, rec("crm.contacts", "c1", 10, city="Bonn", email="a@x.de"))
    checkpoint = write(store_engine, gone("crm.contacts", "c1", 5))
    assert checkpoint.warnings == {("store", STALE_DELETION): 1}
    assert stored_keys(store_engine) == {"c1"} and len(people(store_engine)) == 1
    # in one batch: the newer of a version and a tombstone wins, in either order
    write(store_engine, gone("crm.contacts", "c1", 30), rec("crm.contacts", "c1", 20, city="Ulm", email="a@x.de"))
    assert stored_keys(store_engine) == set()


def test_a_tombstone_for_an_unknown_record_is_counted(store_engine: Engine) -> None:
    checkpoint = write(store_engine, gone("crm.contacts", "nope", None), gone("shop.orders", "o9", None, RecordKind.order))
    assert checkpoint.warnings == {("store", UNKNOWN_DELETION): 2} and checkpoint.rejected == []


def test_a_missing_ok_tombstone_deletes_a_held_record_as_any_tombstone(store_engine: Engine) -> None:
    consent = Record(stream="shop.consents", key="s1:email", kind=RecordKind.consent, identifiers={"email": "a@x.de"},
                     data={"purpose": "email", "status": "granted"}, occurred_at=T0)  # fmt: skip
    write(store_engine, rec("shop.customers", "s1", 0, city="Köln", email="a@x.de", phone="+4917112345678"), consent)
    assert len(people(store_engine)) == 1
    checkpoint = write(store_engine, gone("shop.customers", "s1", 10, missing_ok=True),
                       gone("shop.consents", "s1:email", 10, RecordKind.consent, missing_ok=True))  # fmt: skip
    assert checkpoint.warnings == {} and checkpoint.rejected == []
    assert people(store_engine) == {} and stored_keys(store_engine) == set()
    with store_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM consents").scalar_one() == 0
        assert conn.exec_driver_sql("SELECT count(*) FROM record_index").scalar_one() == 0
        assert conn.exec_driver_sql("SELECT count(*) FROM identities").scalar_one() == 0
        reasons = [r.reason for r in conn.execute(select(_log))]
    assert len(reasons) == 2 and all(r.startswith("record_deleted") for r in reasons)


def test_a_missing_ok_tombstone_of_an_unknown_record_passes_silently(store_engine: Engine) -> None:
    write(store_engine, rec("shop.customers", "s1", 0, email="a@x.de"))
    checkpoint = write(store_engine, gone("shop.consents", "s1:sms", 5, RecordKind.consent, missing_ok=True),
                       gone("shop.consents", "s1:typo", 5, RecordKind.consent))  # fmt: skip
    assert checkpoint.warnings == {("store", UNKNOWN_DELETION): 1}, "only the plain tombstone is counted"
    assert checkpoint.rejected == []
    with store_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM consents").scalar_one() == 0
        assert conn.exec_driver_sql("SELECT stream, \"key\" FROM record_index").all() == [("shop.customers", "s1")]
        assert conn.execute(select(_log)).all() == []
    assert len(people(store_engine)) == 1


def test_deleting_the_linking_record_is_the_replay_of_the_remaining_records(store_engine: Engine) -> None:
    write(store_engine, rec("crm.contacts", "c1", 0, email="a@x.de"), rec("shop.customers", "s1", 5, phone="+4917112345678"))
    write(store_engine, rec("forms.leads", "l1", 10, email="a@x.de", phone="+4917112345678"))
    assert len(people(store_engine)) == 1
    write(store_engine, gone("forms.leads", "l1", 20))
    found = sorted(sorted(ids) for ids, _ in people(store_engine).values())
    assert found == [[("email", "a@x.de")], [("phone", "+4917112345678")]], (
        "the remaining records no longer connect: two people, as a replay of them gives"
    )


def test_deleting_an_event_removes_it(store_engine: Engine) -> None:
    event = Record(stream="web.events", key="e1", kind=RecordKind.event, data={"name": "view"},
                   identifiers={"email": "a@x.de"}, occurred_at=T0)  # fmt: skip
    write(store_engine, rec("crm.contacts", "c1", 0, email="a@x.de"), event)
    write(store_engine, gone("web.events", "e1", None, RecordKind.event))
    with store_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM events").scalar_one() == 0
    assert len(people(store_engine)) == 1
