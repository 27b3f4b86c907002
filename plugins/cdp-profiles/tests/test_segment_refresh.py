"""Refreshing computed traits and segment membership: set-based, with history, on SQLite and PostgreSQL.

The rules are the real engine's (cdp_profiles/segments/); the clock is pinned.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cdp_core.records import Record, RecordKind
from cdp_core.store.checkpoint import Checkpoint
from sqlalchemy import Engine, select

from cdp_profiles.identity import IdentityConfig
from cdp_profiles.membership import reads
from cdp_profiles.membership.refresh import refresh
from cdp_profiles.segments import compile_rules
from cdp_profiles.store import tables
from cdp_profiles.store.profiles import ProfileWriter
from cdp_profiles.store.queries import find_profile

T0 = datetime(2024, 6, 1, 12, tzinfo=UTC)
RULES = compile_rules(
    {"order_count": "count(orders)", "city_caps": "upper(city)"},
    {"berliners": "city == 'Berlin'", "buyers": "count(orders, days = 90) >= 2"},
)


def person(key: str, email: str, city: str, when: datetime) -> Record:
    return Record(stream="crm.contacts", key=key, data={"city": city}, identifiers={"email": email}, occurred_at=when)


def order(key: str, email: str, when: datetime) -> Record:
    data = {"order_id": key, "amount": "10", "currency": "EUR"}
    return Record(stream="shop.orders", kind=RecordKind.order, key=key, data=data, identifiers={"email": email}, occurred_at=when)


def write(engine: Engine, run_id: str, *records: Record) -> None:
    checkpoint = Checkpoint(graph="t", run_id=run_id)
    ProfileWriter(engine, IdentityConfig()).write(list(records), checkpoint)
    assert checkpoint.rejected == []


@pytest.fixture
def engine(store_engine: Engine) -> Iterator[Engine]:
    write(
        store_engine,
        "r1",
        person("a", "anna@x.de", "Berlin", T0 - timedelta(days=30)),
        person("b", "bob@x.de", "Berlin", T0 - timedelta(days=30)),
        person("c", "carla@x.de", "Munich", T0 - timedelta(days=30)),
        order("o1", "anna@x.de", T0 - timedelta(days=10)),
        order("o2", "anna@x.de", T0 - timedelta(days=5)),
        order("o3", "carla@x.de", T0 - timedelta(days=200)),
    )
    yield store_engine


def pid(engine: Engine, email: str) -> str:
    found = find_profile(engine, f"email:{email}", IdentityConfig())
    assert found is not None
    return found


def computed(engine: Engine) -> dict[tuple[str, str], tuple[object, datetime]]:
    with engine.connect() as conn:
        return {(p, n): v for p, names in reads.computed_values(conn, _all_ids(conn)).items() for n, v in names.items()}


def _all_ids(conn: object) -> list[str]:
    return list(conn.execute(select(tables.computed_traits.c.profile_id).distinct()).scalars())


def members(engine: Engine, segment: str) -> set[str]:
    with engine.connect() as conn:
        return {p for p, in conn.execute(select(tables.segment_members.c.profile_id).where(tables.segment_members.c.segment == segment))}


def stays(engine: Engine, segment: str) -> list[tuple[str, datetime, datetime | None]]:
    with engine.connect() as conn:
        return sorted((h.profile_id, h.entered_at, h.left_at) for h in reads.history(conn, segment, 100))


def test_a_full_refresh_computes_every_live_profile_and_every_segment(engine: Engine) -> None:
    anna, bob, carla = (pid(engine, f"{n}@x.de") for n in ("anna", "bob", "carla"))
    result = refresh(engine, RULES, now=T0)
    assert result.computed_scope == "all" and result.computed_rows == 6
    values = computed(engine)
    assert {k: v for k, (v, _) in values.items()} == {
        (anna, "order_count"): 2, (bob, "order_count"): 0, (carla, "order_count"): 1,
        (anna, "city_caps"): "BERLIN", (bob, "city_caps"): "BERLIN", (carla, "city_caps"): "MUNICH",
    }  # fmt: skip
    assert {when for _, when in values.values()} == {T0}
    assert members(engine, "berliners") == {anna, bob} and members(engine, "buyers") == {anna}
    assert [(c.segment, c.members, c.entered, c.left) for c in result.segments] == [
        ("berliners", 2, 2, 0),
        ("buyers", 1, 1, 0),
    ]
    assert stays(engine, "berliners") == sorted([(anna, T0, None), (bob, T0, None)])
    with engine.connect() as conn:
        assert reads.member_counts(conn) == {"berliners": 2, "buyers": 1}
        assert reads.last_refreshes(conn)["buyers"].refreshed_at == T0
        assert [m.segment for m in reads.segments_of(conn, anna)] == ["berliners", "buyers"]


def test_a_runs_refresh_recomputes_only_the_profiles_it_touched_and_diffs_membership(engine: Engine) -> None:
    anna, bob = pid(engine, "anna@x.de"), pid(engine, "bob@x.de")
    refresh(engine, RULES, now=T0)
    t1, t2 = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    write(engine, "r2", person("b2", "bob@x.de", "Hamburg", T0), order("o4", "bob@x.de", T0))
    result = refresh(engine, RULES, now=t1, run_id="r2")
    assert result.computed_scope == "touched" and result.computed_rows == 2  # Bob's two traits, nobody else's
    values = computed(engine)
    assert values[(bob, "order_count")] == (1, t1) and values[(bob, "city_caps")] == ("HAMBURG", t1)
    assert values[(anna, "order_count")] == (2, T0)  # untouched: not recomputed
    assert members(engine, "berliners") == {anna}
    assert stays(engine, "berliners") == sorted([(anna, T0, None), (bob, T0, t1)])

    write(engine, "r3", person("b3", "bob@x.de", "Berlin", T0 + timedelta(minutes=1)))
    refresh(engine, RULES, now=t2, run_id="r3")
    assert members(engine, "berliners") == {anna, bob}
    assert stays(engine, "berliners") == sorted([(anna, T0, None), (bob, T0, t1), (bob, t2, None)])  # back in: a new stay
    with engine.connect() as conn:
        assert [(h.entered_at, h.left_at) for h in reads.history(conn, "berliners", 10, bob)] == [(t2, None), (T0, t1)]


def test_a_moving_time_window_lets_members_leave(engine: Engine) -> None:
    anna = pid(engine, "anna@x.de")
    refresh(engine, RULES, now=T0)
    later = T0 + timedelta(days=86)  # the first of Anna's two orders is now 96 days old
    result = refresh(engine, RULES, now=later)
    assert members(engine, "buyers") == set()
    assert stays(engine, "buyers") == [(anna, T0, later)]
    assert [(c.segment, c.entered, c.left) for c in result.segments] == [("berliners", 0, 0), ("buyers", 0, 1)]


def test_merged_away_profiles_lose_their_rows_and_leave(engine: Engine) -> None:
    anna = pid(engine, "anna@x.de")
    write(engine, "r2", person("x", "annie@x.de", "Berlin", T0 - timedelta(days=1)))
    annie = pid(engine, "annie@x.de")
    refresh(engine, RULES, now=T0)
    assert annie in members(engine, "berliners") and (annie, "order_count") in computed(engine)
    link = Record(stream="crm.contacts", key="link", data={}, identifiers={"email": "anna@x.de", "phone": "+4917100000"},
                  occurred_at=T0)  # fmt: skip
    write(engine, "r3", link, Record(stream="crm.contacts", key="x", data={"city": "Berlin"},
                                     identifiers={"email": "annie@x.de", "phone": "+4917100000"}, occurred_at=T0))  # fmt: skip
    assert pid(engine, "annie@x.de") == anna
    t1 = T0 + timedelta(hours=1)
    refresh(engine, RULES, now=t1, run_id="r3")
    assert not any(p == annie for p, _ in computed(engine))
    assert annie not in members(engine, "berliners")
    assert (annie, T0, t1) in stays(engine, "berliners")


def test_segments_no_longer_configured_are_retired_and_traits_dropped(engine: Engine) -> None:
    refresh(engine, RULES, now=T0)
    fewer = compile_rules({"order_count": "count(orders)"}, {"buyers": "count(orders, days = 90) >= 2"})
    t1 = T0 + timedelta(hours=1)
    refresh(engine, fewer, now=t1)
    assert members(engine, "berliners") == set()
    assert {left for _, _, left in stays(engine, "berliners")} == {t1}
    assert {name for _, name in computed(engine)} == {"order_count"}
    with engine.connect() as conn:
        assert set(reads.last_refreshes(conn)) == {"buyers"}


def test_refreshing_twice_at_the_same_time_changes_nothing(engine: Engine) -> None:
    refresh(engine, RULES, now=T0)
    before = stays(engine, "berliners"), computed(engine)
    again = refresh(engine, RULES, now=T0)
    assert [(c.entered, c.left) for c in again.segments] == [(0, 0), (0, 0)]
    assert (stays(engine, "berliners"), computed(engine)) == before
