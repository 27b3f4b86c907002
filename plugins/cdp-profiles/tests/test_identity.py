"""Identity resolution (README.md, "Identity resolution"): each rule, then the same result for any batch size and order."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cdp_core.records import Record
from cdp_core.store import Checkpoint
from cdp_core.store.engine import make_engine
from cdp_core.timeutil import as_utc
from sqlalchemy import Engine, select

from cdp_profiles.identity import IdentityConfig, SetNode, resolve
from cdp_profiles.store import activity, sortkey, tables
from cdp_profiles.store.extend import Extend
from cdp_profiles.store.owners import owner_of, with_sets
from cdp_profiles.store.profiles import ProfileWriter, set_id
from cdp_profiles.store.replay import profile_id
from cdp_profiles.store.schema import ensure_schema
from cdp_profiles.store.traits import Traits, origin

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CONFIG = IdentityConfig(
    priority=["shopify_customer_id", "email", "phone"],
    limits={"shopify_customer_id": 1, "email": 3, "phone": 2},
)


def rec(key: str, minutes: int, data: dict[str, Any] | None = None, **identifiers: str) -> Record:
    return Record(
        stream="test.people",
        key=key,
        data=data or {},
        identifiers={k.replace("shop", "shopify_customer_id") if k == "shop" else k: v for k, v in identifiers.items()},
        occurred_at=T0 + timedelta(minutes=minutes),
    )


@pytest.fixture
def engine(store_engine: Engine) -> Engine:
    return store_engine


def write(
    engine: Engine, records: list[Record], batch_size: int = 10_000, config: IdentityConfig = CONFIG
) -> list[Any]:
    writer = ProfileWriter(engine, config)
    rejected: list[Any] = []
    for start in range(0, len(records), batch_size):
        checkpoint = Checkpoint(graph="g", run_id=f"run{start}")
        writer.write(records[start : start + batch_size], checkpoint)
        rejected.extend(r for _, r in checkpoint.rejected)
    return rejected


def people(engine: Engine) -> set[frozenset[tuple[str, str]]]:
    """The partition: for each live profile, the identifiers it owns."""
    with engine.connect() as conn:
        live = set(conn.execute(select(tables.profiles.c.id).where(tables.profiles.c.merged_into.is_(None))).scalars())
        owned: dict[str, set[tuple[str, str]]] = {p: set() for p in live}
        for row in conn.execute(select(tables.identities.c.type, tables.identities.c.value, tables.identities.c.profile_id)):
            owned[row.profile_id].add((row.type, row.value))
    return {frozenset(v) for v in owned.values()}


def merges(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(tables.merge_log).order_by(tables.merge_log.c.id)))


def profile_of(engine: Engine, type_name: str, value: str) -> str:
    with engine.connect() as conn:
        return conn.execute(
            select(tables.identities.c.profile_id).where(tables.identities.c.type == type_name, tables.identities.c.value == value)
        ).scalar_one()


E = "email"
P = "phone"
S = "shopify_customer_id"


def test_new_profile_then_join(engine: Engine) -> None:
    write(engine, [rec("a", 0, email=" Anna@Example.com ")])
    assert people(engine) == {frozenset({(E, "anna@example.com")})}
    write(engine, [rec("b", 1, email="anna@example.com", phone="0171 1234567")])
    assert people(engine) == {frozenset({(E, "anna@example.com"), (P, "+491711234567")})}
    assert merges(engine) == []


def test_merge_of_two_into_the_oldest_is_logged(engine: Engine) -> None:
    write(engine, [rec("old", 0, email="a@x.de"), rec("new", 5, phone="+491715550101")])
    oldest = profile_of(engine, E, "a@x.de")
    younger = profile_of(engine, P, "+491715550101")
    write(engine, [rec("link", 10, email="a@x.de", phone="+491715550101")])
    assert people(engine) == {frozenset({(E, "a@x.de"), (P, "+491715550101")})}
    assert profile_of(engine, P, "+491715550101") == oldest
    (log,) = merges(engine)
    assert (log.winner, log.loser) == (oldest, younger)
    assert (log.identifier_type, log.record) in {(E, "test.people|link"), (P, "test.people|link")}
    assert "belongs to both profiles" in log.reason
    with engine.connect() as conn:
        assert conn.execute(select(tables.profiles.c.merged_into).where(tables.profiles.c.id == younger)).scalar_one() == oldest


def test_merge_of_three(engine: Engine) -> None:
    write(engine, [rec("1", 0, email="a@x.de"), rec("2", 1, phone="+491715550101"), rec("3", 2, email="b@x.de")])
    first = profile_of(engine, E, "a@x.de")
    write(
        engine, [rec("4", 3, email="a@x.de", phone="+491715550101"), rec("5", 4, phone="+491715550101", email="b@x.de")]
    )
    assert people(engine) == {frozenset({(E, "a@x.de"), (E, "b@x.de"), (P, "+491715550101")})}
    assert profile_of(engine, E, "b@x.de") == first
    assert len(merges(engine)) == 2


def test_limit_blocks_a_merge(engine: Engine) -> None:
    write(engine, [rec("s1", 0, shop="1", email="a@x.de")])
    write(engine, [rec("s2", 1, shop="2", email="a@x.de")])
    assert people(engine) == {frozenset({(S, "1"), (E, "a@x.de")}), frozenset({(S, "2")})}
    assert merges(engine) == []


def test_blocked_value_links_nobody(engine: Engine) -> None:
    rejected = write(
        engine,
        [
            rec("a", 0, email="test@test.com", phone="+491715550101"),
            rec("b", 1, email="TEST@test.com ", phone="+491725550102"),
            rec("c", 2, email="noreply@shop.de"),
            rec("d", 3, phone="+49 171 0000000"),
        ],
    )
    assert people(engine) == {frozenset({(P, "+491715550101")}), frozenset({(P, "+491725550102")})}
    assert sorted(r.key for r in rejected) == ["c", "d"]
    assert all("no usable identifier" in r.reason and "blocked" in r.reason for r in rejected)


def test_priority_fallback_drops_the_lowest_priority_identifier(engine: Engine) -> None:
    write(engine, [rec("p1", 0, shop="1", email="a@x.de"), rec("p2", 1, shop="2", phone="+491715550101")])
    p1 = profile_of(engine, S, "1")
    write(engine, [rec("r", 2, email="a@x.de", phone="+491715550101", data={"note": "joined p1"})])
    # Merging p1 and p2 would give two shop ids: the phone (lowest priority) is dropped from the match.
    assert people(engine) == {frozenset({(S, "1"), (E, "a@x.de")}), frozenset({(S, "2"), (P, "+491715550101")})}
    with engine.connect() as conn:
        note = conn.execute(select(tables.profiles.c.traits).where(tables.profiles.c.id == p1)).scalar_one()["note"]
    assert note == "joined p1"


def test_redelivered_record_updates_and_moves(engine: Engine) -> None:
    write(engine, [rec("c", 0, data={"city": "Köln"}, email="a@x.de"), rec("d", 1, email="b@x.de")])
    write(engine, [rec("c", 0, data={"city": "Bonn"}, email="a@x.de")])
    with engine.connect() as conn:
        assert conn.execute(select(tables.profile_records.c.data).where(tables.profile_records.c.key == "c")).scalar_one() == {
            "city": "Bonn"
        }
    # the contact changes its email: the old address no longer links anyone
    write(engine, [rec("c", 0, data={"city": "Bonn"}, email="b@x.de")])
    assert people(engine) == {frozenset({(E, "b@x.de")})}


def test_profile_ids_are_uuid7_ordered_by_the_founders_time_and_derived_from_the_founder() -> None:
    early = profile_id("2024-05-01T09:00:00.000000|crm.contacts|1", "set-a")
    assert early == profile_id("2024-05-01T09:00:00.000000|crm.contacts|1", "set-a")  # same data, same id
    later = profile_id("2024-05-01T09:00:00.001000|shop.customers|9", "set-0")
    assert early < later  # time first, whatever the hash
    parsed = uuid.UUID(early)
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert parsed.int >> 80 == int(datetime(2024, 5, 1, 9, tzinfo=UTC).timestamp() * 1000)
    assert profile_id("2024-05-01T09:00:00.000000|crm.contacts|1", "set-b") != early
    assert profile_id("2024-05-01T09:00:00.000000|crm.contacts|1", "set-a", attempt=1) != early
    assert uuid.UUID(profile_id("~|crm.contacts|1", "set-a")).int >> 80 == 0  # no time: the start of the range
    assert uuid.UUID(profile_id("1969-12-31T23:59:59.000000|crm.contacts|1", "set-a")).int >> 80 == 0


def test_pure_resolver_is_order_free() -> None:
    rules = CONFIG.rules
    nodes = [
        SetNode("s1", ((E, "a"), (S, "1")), "2024-01-01|x|1"),
        SetNode("s2", ((E, "a"), (S, "2")), "2024-01-02|x|2"),
        SetNode("s3", ((E, "a"), (P, "p")), "2024-01-03|x|3"),
        SetNode("s4", ((P, "p"), (S, "2")), "2024-01-04|x|4"),
    ]
    expected = resolve(nodes, rules)
    for seed in range(20):
        shuffled = nodes[:]
        random.Random(seed).shuffle(shuffled)
        got = resolve(shuffled, rules)
        assert [sorted(g.sets) for g in got.groups] == [sorted(g.sets) for g in expected.groups]


# -- the same result for any batch size, any order, either database --------------------------------


def messy_people(seed: int = 7, count: int = 400) -> list[Record]:
    """Overlapping identities: case/space variants, phone formats, shared family emails, limits, blocked values."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        person = rng.randrange(count // 3)
        family = person // 4
        email = rng.choice([f"p{person}@x.de", f" P{person}@X.de", f"family{family}@x.de", "test@test.com"])
        phone = rng.choice(
            [f"0171 {person:07d}", f"+49 171 {person:07d}", f"+49 (0)171-{person:07d}", "", "+49 000 0000000"]
        )
        ids = {"email": email, "phone": phone}
        if rng.random() < 0.3:
            ids["shopify_customer_id"] = str(person * 10 + rng.randrange(2))
        ids = {k: v for k, v in ids.items() if v}
        data = {"n": i, "city": rng.choice(["Berlin", "Köln", ""]), "tags": [rng.choice("abc")]}
        when = T0 + timedelta(minutes=rng.randrange(5000)) if rng.random() < 0.9 else None
        records.append(
            Record(stream=rng.choice(["crm.c", "shop.c"]), key=str(i), data=data, identifiers=ids, occurred_at=when)
        )
    return records


Snapshot = tuple[Any, ...]


def snapshot(engine: Engine) -> Snapshot:
    """Everything resolution decides, by person (profile ids may differ): who, traits, origins, founders, the graph."""
    partition = people(engine)
    by_profile: dict[str, frozenset[tuple[str, str]]] = {}
    with engine.connect() as conn:
        rows = list(
            conn.execute(select(tables.identities.c.type, tables.identities.c.value, tables.identities.c.profile_id, tables.identities.c.first_seen))
        )
        for row in rows:
            by_profile[row.profile_id] = by_profile.get(row.profile_id, frozenset()) | {(row.type, row.value)}
        origins = {(row.type, row.value): row.first_seen for row in rows}
        traits: dict[Any, dict[str, Any]] = {}
        founders: dict[Any, tuple[str, str]] = {}
        query = select(tables.profiles.c.id, tables.profiles.c.traits, tables.profiles.c.trait_sources, tables.profiles.c.founder, tables.profiles.c.sort_key)
        for row in conn.execute(query.where(tables.profiles.c.merged_into.is_(None))):
            loaded = Traits.load(row.traits, row.trait_sources)
            traits[by_profile[row.id]] = {
                name: (value, origin(loaded.keys[name])) for name, value in loaded.values.items()
            }
            founders[by_profile[row.id]] = (row.founder, row.sort_key)
        index = tables.record_index
        records = {
            (r.stream, r.key): by_profile.get(r.owner)
            for r in conn.execute(
                select(index.c.stream, index.c.key, owner_of().label("owner"))
                .select_from(with_sets(index))
                .where(owner_of().is_not(None))
            )
        }
        # The identity graph itself: each set once, with its earliest record; and as member rows
        # exactly the identifiers a set holds that its own profile does not own (a set no record
        # uses any more leaves no member behind).
        sets = {row.id: (row.sort_key, row.identifiers, row.profile_id) for row in conn.execute(select(tables.id_sets))}
        owner = {(row.type, row.value): row.profile_id for row in rows}
        members = {(row.type, row.value, row.set_id) for row in conn.execute(select(tables.id_set_members))}
        foreign = {(t, v, sid) for sid, (_, ids, pid) in sets.items() for t, v in ids if owner.get((t, v)) != pid}
        assert members == foreign, "members = identifiers a set holds that its profile does not own"
        # A record on the activity fast path has no set row, but the set it would have (the same id),
        # which a replay gives it: the graph is the same either way.
        graph_sets = {sid: (key, tuple(sorted(map(tuple, ids)))) for sid, (key, ids, _) in sets.items()}
        for r in conn.execute(select(index).where(index.c.profile_id.is_not(None))):
            ids = tuple(sorted(map(tuple, r.identifiers)))
            key = sortkey.encode(None if r.occurred_at is None else as_utc(r.occurred_at), r.stream, r.key)
            sid = set_id(ids)
            graph_sets[sid] = (min(key, graph_sets[sid][0]) if sid in graph_sets else key, ids)
        graph = frozenset((sid, key, ids) for sid, (key, ids) in graph_sets.items())
    return partition, traits, origins, founders, records, graph


TRAIT_RULES = {
    "strategies": {"tags": "accumulate", "n": "oldest", "city": "source_priority"},
    "source_priority": ["shop.c"],
}
TIGHT = IdentityConfig(limits={"email": 2, "phone": 1, "shopify_customer_id": 1}, traits=TRAIT_RULES)
LOOSE = IdentityConfig(traits=TRAIT_RULES)


def with_redeliveries(seed: int = 11) -> list[Record]:
    """messy_people, then 60 of them again with new data (some with a new email), and NPS answers."""
    rng = random.Random(seed)
    base = messy_people(seed=3, count=300)
    again = []
    for r in rng.sample(base, 60):
        ids = dict(r.identifiers)
        if rng.random() < 0.4:
            ids["email"] = f"moved{rng.randrange(40)}@x.de"
        when = r.occurred_at if rng.random() < 0.7 else T0 + timedelta(minutes=rng.randrange(5000))
        data = {**r.data, "city": rng.choice(["Ulm", ""]), "n": -1}
        again.append(Record(stream=r.stream, key=r.key, data=data, identifiers=ids, occurred_at=when))
    answers = [
        Record(
            stream="survey.a",
            kind="nps_response",
            key=f"a{i}",
            data={"score": rng.randrange(11)},
            identifiers={"email": f"p{rng.randrange(100)}@x.de"},
            occurred_at=T0 + timedelta(minutes=rng.randrange(5000)),
        )
        for i in range(80)
    ]
    return base + answers + again


def with_activity(seed: int = 5) -> list[Record]:
    """messy_people with events, orders and NPS answers among them, then 60 changes to those: 30 deleted,
    30 sent again (half with other identifiers).

    Most activity records carry identifiers of one person, as in real data (the activity fast path);
    some are earlier than every record of their person (a first sighting and a founder move), some
    link two people (a merge), some carry a value never seen (a new person)."""
    rng = random.Random(seed)
    base = messy_people(seed=seed, count=300)
    activity_records = []
    for i in range(240):
        person = rng.randrange(100)
        ids: dict[str, str] = rng.choice(
            [
                {"email": f"p{person}@x.de"},
                {"phone": f"+49 171 {person:07d}"},
                {"email": f"p{person}@x.de", "phone": f"0171 {person:07d}"},
                {"email": f"p{person}@x.de", "shopify_customer_id": str(rng.randrange(100) * 10)},
                {"email": f"new{rng.randrange(20)}@x.de"},
            ]
        )
        kind, data = rng.choice(
            [
                ("event", {"event": "viewed"}),
                ("order", {"total_price": f"{rng.randrange(1, 90)}.50"}),
                ("nps_response", {"score": rng.randrange(11)}),
            ]
        )
        when = T0 + timedelta(minutes=rng.randrange(-2000, 6000))
        activity_records.append(
            Record(stream=f"act.{kind}", kind=kind, key=f"x{i}", data=data, identifiers=ids, occurred_at=when)
        )
    records = base + activity_records
    rng.shuffle(records)
    later = T0 + timedelta(days=30)
    changes = []
    for n, r in enumerate(rng.sample(activity_records, 60)):
        if n < 30:
            changes.append(Record(stream=r.stream, kind=r.kind, key=r.key, deleted=True, occurred_at=later))
        else:
            ids = dict(r.identifiers) if n % 2 else {"email": f"p{rng.randrange(100)}@x.de"}
            changes.append(
                Record(stream=r.stream, kind=r.kind, key=r.key, data=r.data, identifiers=ids, occurred_at=later)
            )
    return records + changes


@pytest.fixture(scope="module")
def expected_snapshots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Snapshot]:
    """The reference: every record in one batch (of a re-delivered record the store keeps the newest
    version it can hold, in one batch as in many)."""
    out = {}
    for name, records, config in (
        ("messy", messy_people(), LOOSE),
        ("tight", messy_people(), TIGHT),
        ("again", with_redeliveries(), LOOSE),
        ("again-tight", with_redeliveries(), TIGHT),
        ("activity", with_activity(), LOOSE),
        ("activity-tight", with_activity(), TIGHT),
    ):
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('ref')}/ref.sqlite")
        ensure_schema(engine)
        write(engine, records, batch_size=10_000, config=config)
        out[name] = snapshot(engine)
        engine.dispose()
    return out


@pytest.mark.parametrize("case", ["messy", "tight", "again", "again-tight", "activity", "activity-tight"])
@pytest.mark.parametrize(
    ("batch_size", "shuffle_seed"), [(1, None), (7, None), (10_000, None), (7, 1), (10_000, 2), (1, 3)]
)
def test_same_result_for_any_batch_size_and_order(
    engine: Engine, case: str, batch_size: int, shuffle_seed: int | None, expected_snapshots: dict[str, Snapshot]
) -> None:
    """Same people, traits (value, source, time), identifier origins, founders and record owners.

    With re-deliveries, only the order within the first deliveries and within the second is
    shuffled: a record's last version must come last. Both paths of the writer (extending a
    settled profile in place, replaying a component) are taken: the test counts them.
    """
    records = (
        messy_people()
        if case in ("messy", "tight")
        else with_activity()
        if case.startswith("activity")
        else with_redeliveries()
    )
    config = TIGHT if "tight" in case else LOOSE
    if shuffle_seed is not None:
        split = len(records) if case in ("messy", "tight") else len(records) - 60
        first, rest = records[:split], records[split:]
        random.Random(shuffle_seed).shuffle(first)
        random.Random(shuffle_seed).shuffle(rest)
        records = first + rest
    paths = {"fast": 0, "slow": 0, "activity": 0}
    classify = Extend._classify
    split_activity = activity.split

    def counting(self: Extend, comp: Any, *args: Any) -> None:
        classify(self, comp, *args)
        paths["slow" if comp.slow else "fast"] += 1

    def counting_activity(db: Any, prepared: list[Any], old: Any) -> Any:
        known = split_activity(db, prepared, old)
        paths["activity"] += sum(1 for p in prepared if p.profile_id is not None)
        return known

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Extend, "_classify", counting)
        patch.setattr(activity, "split", counting_activity)
        write(engine, records, batch_size=batch_size, config=config)
    got = snapshot(engine)
    expected = expected_snapshots[case]
    assert len(expected[0]) > 50  # the data really has people to tell apart
    assert any(len(p) > 2 for p in expected[0])  # and some that needed merging
    assert paths["fast"] > 0 and (batch_size == 10_000 or paths["slow"] > 0)
    # NPS answers of people already stored take the activity fast path (all three paths are taken)
    assert paths["activity"] > 0 or batch_size == 10_000 or case in ("messy", "tight")
    for part, name in enumerate(("partition", "traits", "origins", "founders", "records", "graph")):
        assert got[part] == expected[part], name


def test_anonymous_answers_and_orders_are_kept_unlinked(engine: Engine) -> None:
    anonymous = [
        Record(stream="survey.answers", kind="nps_response", key="t1", data={"score": 3}, occurred_at=T0),
        Record(stream="shop.orders", kind="order", key="o1", data={"total_price": "9.50"}, occurred_at=T0),
        Record(stream="crm.contacts", kind="profile", key="c1", data={"city": "Ulm"}),
    ]
    rejected = write(engine, anonymous)
    assert [(r.key, r.reason) for r in rejected] == [("c1", "no usable identifier to link to a person")]
    with engine.connect() as conn:
        rows = conn.execute(select(tables.record_index.c.key, tables.record_index.c.set_id).order_by(tables.record_index.c.key)).all()
        assert [(r.key, r.set_id) for r in rows] == [("o1", None), ("t1", None)]
        assert conn.execute(select(tables.nps_responses.c.category)).scalar_one() == "detractor"
    assert people(engine) == set()


def test_blocked_globs_ignore_case_for_every_type() -> None:
    rules = IdentityConfig(blocked=["shopify_customer_id:ABC*", "email:NoReply@*"]).rules
    assert rules.is_blocked("shopify_customer_id", "ABC1")
    assert rules.is_blocked("shopify_customer_id", "abc1")
    assert rules.is_blocked("email", "noreply@shop.de")
    assert not rules.is_blocked("shopify_customer_id", "XABC1")
