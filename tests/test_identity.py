"""Identity resolution, design.md section 5: each rule, then the same result for any batch size and order."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from cdp_core.identity import IdentityConfig, SetNode, resolve
from cdp_core.records import Record
from cdp_core.store import Checkpoint
from cdp_core.store import profile_models as m
from cdp_core.store.engine import make_engine
from cdp_core.store.profiles import ProfileWriter
from cdp_core.store.schema import create_schema

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
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    create_schema(engine)
    yield engine
    engine.dispose()


def write(engine: Engine, records: list[Record], batch_size: int = 10_000, config: IdentityConfig = CONFIG) -> list[Any]:
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
        live = set(conn.execute(select(m.Profile.id).where(m.Profile.merged_into.is_(None))).scalars())
        owned: dict[str, set[tuple[str, str]]] = {p: set() for p in live}
        for row in conn.execute(select(m.Identity.type, m.Identity.value, m.Identity.profile_id)):
            owned[row.profile_id].add((row.type, row.value))
    return {frozenset(v) for v in owned.values()}


def merges(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(m.MergeLog).order_by(m.MergeLog.id)))


def profile_of(engine: Engine, type_name: str, value: str) -> str:
    with engine.connect() as conn:
        return conn.execute(
            select(m.Identity.profile_id).where(m.Identity.type == type_name, m.Identity.value == value)
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
        assert conn.execute(select(m.Profile.merged_into).where(m.Profile.id == younger)).scalar_one() == oldest


def test_merge_of_three(engine: Engine) -> None:
    write(engine, [rec("1", 0, email="a@x.de"), rec("2", 1, phone="+491715550101"), rec("3", 2, email="b@x.de")])
    first = profile_of(engine, E, "a@x.de")
    write(engine, [rec("4", 3, email="a@x.de", phone="+491715550101"), rec("5", 4, phone="+491715550101", email="b@x.de")])
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
        note = conn.execute(select(m.Trait.value).where(m.Trait.profile_id == p1, m.Trait.name == "note")).scalar_one()
    assert note == "joined p1"


def test_redelivered_record_updates_and_moves(engine: Engine) -> None:
    write(engine, [rec("c", 0, data={"city": "Köln"}, email="a@x.de"), rec("d", 1, email="b@x.de")])
    write(engine, [rec("c", 0, data={"city": "Bonn"}, email="a@x.de")])
    with engine.connect() as conn:
        assert conn.execute(select(m.ProfileRecord.data).where(m.ProfileRecord.key == "c")).scalar_one() == {"city": "Bonn"}
    # the contact changes its email: the old address no longer links anyone
    write(engine, [rec("c", 0, data={"city": "Bonn"}, email="b@x.de")])
    assert people(engine) == {frozenset({(E, "b@x.de")})}


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
        phone = rng.choice([f"0171 {person:07d}", f"+49 171 {person:07d}", f"+49 (0)171-{person:07d}", "", "+49 000 0000000"])
        ids = {"email": email, "phone": phone}
        if rng.random() < 0.3:
            ids["shopify_customer_id"] = str(person * 10 + rng.randrange(2))
        ids = {k: v for k, v in ids.items() if v}
        data = {"n": i, "city": rng.choice(["Berlin", "Köln", ""]), "tags": [rng.choice("abc")]}
        when = T0 + timedelta(minutes=rng.randrange(5000)) if rng.random() < 0.9 else None
        records.append(Record(stream=rng.choice(["crm.c", "shop.c"]), key=str(i), data=data, identifiers=ids, occurred_at=when))
    return records


def snapshot(engine: Engine) -> tuple[set[Any], dict[Any, dict[str, Any]]]:
    partition = people(engine)
    by_profile: dict[str, frozenset[tuple[str, str]]] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(m.Identity.type, m.Identity.value, m.Identity.profile_id)):
            by_profile.setdefault(row.profile_id, frozenset())
            by_profile[row.profile_id] |= {(row.type, row.value)}
        traits: dict[Any, dict[str, Any]] = {}
        for row in conn.execute(select(m.Trait.profile_id, m.Trait.name, m.Trait.value, m.Trait.source)):
            traits.setdefault(by_profile[row.profile_id], {})[row.name] = (row.value, row.source)
    return partition, traits


@pytest.fixture(scope="module")
def expected_snapshot(tmp_path_factory: pytest.TempPathFactory) -> tuple[set[Any], dict[Any, dict[str, Any]]]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('ref')}/ref.sqlite")
    create_schema(engine)
    config = IdentityConfig(traits={"strategies": {"tags": "accumulate"}})
    write(engine, messy_people(), batch_size=10_000, config=config)
    return snapshot(engine)


@pytest.mark.parametrize(("batch_size", "shuffle_seed"), [(1, None), (7, None), (10_000, None), (7, 1), (10_000, 2), (1, 3)])
def test_same_result_for_any_batch_size_and_order(
    engine: Engine, batch_size: int, shuffle_seed: int | None, expected_snapshot: Any
) -> None:
    records = messy_people()
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(records)
    config = IdentityConfig(traits={"strategies": {"tags": "accumulate"}})
    write(engine, records, batch_size=batch_size, config=config)
    partition, traits = snapshot(engine)
    expected_partition, expected_traits = expected_snapshot
    assert len(expected_partition) > 50  # the data really has people to tell apart
    assert any(len(p) > 2 for p in expected_partition)  # and some that needed merging
    assert partition == expected_partition
    assert traits == expected_traits


def test_anonymous_answers_and_orders_are_kept_unlinked(engine: Engine) -> None:
    anonymous = [
        Record(stream="survey.answers", kind="nps_response", key="t1", data={"score": 3}, occurred_at=T0),
        Record(stream="shop.orders", kind="order", key="o1", data={"total_price": "9.50"}, occurred_at=T0),
        Record(stream="crm.contacts", kind="profile", key="c1", data={"city": "Ulm"}),
    ]
    rejected = write(engine, anonymous)
    assert [(r.key, r.reason) for r in rejected] == [("c1", "no usable identifier to link to a person")]
    with engine.connect() as conn:
        rows = conn.execute(select(m.RecordIndex.key, m.RecordIndex.set_id).order_by(m.RecordIndex.key)).all()
        assert [(r.key, r.set_id) for r in rows] == [("o1", None), ("t1", None)]
        assert conn.execute(select(m.NpsResponse.category)).scalar_one() == "detractor"
    assert people(engine) == set()


def test_blocked_globs_ignore_case_for_every_type() -> None:
    rules = IdentityConfig(blocked=["shopify_customer_id:ABC*", "email:NoReply@*"]).rules
    assert rules.is_blocked("shopify_customer_id", "ABC1")
    assert rules.is_blocked("shopify_customer_id", "abc1")
    assert rules.is_blocked("email", "noreply@shop.de")
    assert not rules.is_blocked("shopify_customer_id", "XABC1")
