"""Each function of the segment language on a fixed set of people (SQL on both databases and memory), and each error."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cdp_core.cli import build_app
from sqlalchemy import Engine
from typer.testing import CliRunner

from cdp_profiles.consent import ConsentConfig, Policy, Purpose
from cdp_profiles.segments import (
    Person,
    RulesError,
    compile_rules,
    computed_values_query,
    decode_value,
    explain,
    is_member,
    load_person,
    members_query,
    where_query,
)
from cdp_profiles.segments.memory import computed_values

from segment_data import NOW, store_people


def ago(days: float) -> Any:
    return NOW - timedelta(days=days)


def people() -> list[Person]:
    ann = Person(
        "ann",
        traits={"country": "DE", "age": "42", "vip": "yes", "tags": ["vip", "b2b"], "first name": "Ann"},
        identities=[{"type": "email", "value": "ann@x.de", "first_seen": "k1"}, {"type": "email", "value": "a2@x.de", "first_seen": "k2"}],
        events=[
            {"name": "email_opened", "properties": {"campaign": "spring", "n": 2}, "occurred_at": ago(10)},
            {"name": "email_opened", "properties": {"campaign": "summer", "n": "3"}, "occurred_at": ago(100)},
            {"name": "page_viewed", "properties": {}, "occurred_at": ago(1)},
        ],
        orders=[
            {"order_id": "1", "amount": Decimal("19.99"), "currency": "EUR", "status": "paid", "items": None, "occurred_at": ago(5)},
            {"order_id": "2", "amount": Decimal("80.01"), "currency": "EUR", "status": "paid", "items": None, "occurred_at": ago(60)},
            {"order_id": "3", "amount": Decimal("50"), "currency": "EUR", "status": "cancelled", "items": None, "occurred_at": ago(30)},
            {"order_id": "4", "amount": Decimal("5"), "currency": "USD", "status": "paid", "items": None, "occurred_at": ago(400)},
        ],
        nps=[{"score": 3, "category": "detractor", "comment": None, "survey": "q1", "channel": "email", "answered_at": ago(20)}],
        consents=[
            {"purpose": "ads", "status": "granted", "source": "shop", "occurred_at": ago(50)},
            {"purpose": "ads", "status": "revoked", "source": "crm", "occurred_at": ago(2)},
            {"purpose": "email", "status": "granted", "source": "shop", "occurred_at": ago(50)},
        ],
    )  # fmt: skip
    bob = Person(
        "bob",
        traits={"country": "AT", "age": 17, "vip": False, "tags": "vip,b2c"},
        events=[{"name": "page_viewed", "properties": {}, "occurred_at": ago(3)}],
        orders=[{"order_id": "9", "amount": Decimal("100"), "currency": "EUR", "status": "paid", "items": None, "occurred_at": ago(300)}],
        nps=[
            {"score": 10, "category": "promoter", "comment": None, "survey": "q1", "channel": None, "answered_at": ago(10)},
            {"score": 5, "category": "detractor", "comment": None, "survey": "q1", "channel": None, "answered_at": ago(45)},
        ],
        consents=[{"purpose": "ads", "status": "granted", "source": "form", "occurred_at": ago(1)}],
    )  # fmt: skip
    cy = Person("cy", traits={"country": None, "age": "n/a"})
    return [ann, bob, cy]


COMPUTED = {
    "revenue_365d": "sum(orders.amount, where = status != 'cancelled', days = 365)",
    "orders_90d": "count(orders, days = 90)",
}
SEGMENTS = {
    "repeat_buyers": "count(orders, where = status != 'cancelled', days = 90) >= 2",
    "recent_detractors": "count(nps, where = category == 'detractor', days = 30) > 0",
    "lapsed": "not in_segment('repeat_buyers') and count(orders) > 0",
}


@pytest.fixture
def stored(store_engine: Engine) -> Engine:
    store_people(store_engine, people(), merged_traits={"country": "DE", "vip": True})
    return store_engine


def members(engine: Engine, rule: str) -> list[str]:
    rules = compile_rules(COMPUTED, SEGMENTS)
    with engine.connect() as conn:
        sql = sorted(r.profile_id for r in conn.execute(where_query(rules, rule, engine.dialect.name, NOW)))
    memory = sorted(p.profile_id for p in people() if is_member(compile_rules(COMPUTED, {**SEGMENTS, "x": rule}), "x", p, NOW))
    assert sql == memory, f"{rule}: SQL {sql}, memory {memory}"
    return sql


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # traits, typed by what they meet
        ("country == 'DE'", ["ann"]),
        ("age >= 18", ["ann"]),  # "42" is numeric text; "n/a" is not comparable with a number
        ("age < 18", ["bob"]),
        ("vip", ["ann"]),  # "yes" is true, false is false, a missing trait is null
        ("vip == true", ["ann"]),
        ("not vip", ["bob", "cy"]),
        ("country == null", ["cy"]),
        ("country != 'DE'", ["bob", "cy"]),
        ("`first name` == 'Ann'", ["ann"]),
        ("'vip' in tags", ["ann", "bob"]),  # a list by equality, text by substring
        ("'b2b' in tags", ["ann"]),
        ("country in ['DE', 'AT']", ["ann", "bob"]),
        ("country not in ['DE', 'AT']", ["cy"]),
        ("identifiers.email == 'ann@x.de'", ["ann"]),  # the earliest seen
        ("identifiers.email", ["ann"]),
        # functions
        ("lower(country) == 'de'", ["ann"]),
        ("upper(country) == 'AT'", ["bob"]),
        ("len(tags) == 2", ["ann"]),
        ("len(tags) == 7", ["bob"]),
        ("coalesce(country, 'none') == 'none'", ["cy"]),
        # consent
        ("consent('ads') == 'revoked'", ["ann"]),
        ("consent('ads') == null", ["cy"]),
        ("has_consent('ads')", ["bob"]),  # opt-in: only a grant
        ("has_consent('email')", ["ann"]),
        ("has_consent('analytics')", ["ann", "bob", "cy"]),  # opt-out: nobody said no
        # aggregates and windows
        ("count(orders, days = 90) >= 2", ["ann"]),
        ("count(orders, where = status != 'cancelled', days = 90) >= 2", ["ann"]),
        ("count(orders, where = status == 'cancelled') == 1", ["ann"]),
        ("count(nps, where = category == 'detractor', days = 30) > 0", ["ann"]),
        ("count(events, where = name == 'email_opened', days = 60) == 0", ["bob", "cy"]),
        ("count(events, where = properties.campaign == 'summer') > 0", ["ann"]),
        ("count(events, where = occurred_at >= '2025-02-01') >= 2", ["ann"]),
        ("count(orders, since = '2024-05-01', until = '2024-05-31') == 1", ["bob"]),
        ("sum(orders.amount, days = 365) == 150", ["ann"]),
        ("sum(orders.amount, where = status != 'cancelled', days = 365) == 100", ["ann", "bob"]),
        ("sum(events.properties.n) == 5", ["ann"]),
        ("avg(nps.score) == 7.5", ["bob"]),
        ("min(orders.amount) == 5", ["ann"]),
        ("max(nps.score) >= 9", ["bob"]),
        ("first(orders.currency) == 'USD'", ["ann"]),
        ("last(events.name) == 'page_viewed'", ["ann", "bob"]),
        ("last(orders.amount) == 19.99", ["ann"]),
        ("most_frequent(events.name) == 'email_opened'", ["ann"]),
        ("'email_opened' in distinct(events.name, days = 30)", ["ann"]),
        ("len(distinct(orders.currency)) == 2", ["ann"]),
        ("avg(orders.amount) == null", ["cy"]),
        # computed traits and other segments
        ("revenue_365d >= 100", ["ann", "bob"]),
        ("in_segment('repeat_buyers') or in_segment('recent_detractors')", ["ann"]),
        ("in_segment('lapsed')", ["bob"]),
        ("revenue_365d / orders_90d > 30", ["ann"]),
    ],
)
def test_each_function_gives_the_same_members_in_sql_and_memory(stored: Engine, rule: str, expected: list[str]) -> None:
    assert members(stored, rule) == expected


def test_computed_values_are_set_based_and_agree_with_memory(stored: Engine) -> None:
    computed = {
        **COMPUTED,
        "top_event": "most_frequent(events.name)",
        "events_seen": "distinct(events.name)",
        "first_amount": "first(orders.amount)",
        "last_score": "last(nps.score)",
        "avg_score": "avg(nps.score)",
        "country_copy": "country",
    }
    rules = compile_rules(computed, SEGMENTS)
    with stored.connect() as conn:
        rows = conn.execute(computed_values_query(rules, None, stored.dialect.name, NOW)).all()
        only_bob = conn.execute(
            computed_values_query(rules, ["orders_90d"], stored.dialect.name, NOW, members_query(rules, "lapsed", stored.dialect.name, NOW))
        ).all()  # fmt: skip
    got = {(r.profile_id, r.name): decode_value(r.value) for r in rows}
    assert got[("ann", "revenue_365d")] == 100.0
    assert got[("ann", "events_seen")] == ["email_opened", "page_viewed"]
    assert got[("ann", "first_amount")] == 5.0
    assert got[("bob", "last_score")] == 10
    assert got[("bob", "avg_score")] == 7.5
    assert got[("cy", "avg_score")] is None
    assert got[("cy", "events_seen")] == []
    assert got[("ann", "country_copy")] == "DE"
    assert "merged" not in {pid for pid, _ in got}
    for person in people():
        for name, value in computed_values(rules, person, NOW).items():
            assert got[(person.profile_id, name)] == value, (person.profile_id, name)
    assert [(r.profile_id, r.name, decode_value(r.value)) for r in only_bob] == [("bob", "orders_90d", 0)]


def test_explain_says_which_condition_held(stored: Engine) -> None:
    rules = compile_rules(COMPUTED, {**SEGMENTS, "target": "in_segment('repeat_buyers') and has_consent('ads')"})
    with stored.connect() as conn:
        ann = load_person(conn, "ann")
        assert load_person(conn, "merged") is None
    assert ann is not None and len(ann.orders) == 4 and ann.traits["tags"] == ["vip", "b2b"]
    why = explain(rules, "target", ann, NOW)
    assert (why.text, why.held) == ("in_segment('target')", False)
    (rule,) = why.children
    segment, consent = rule.children
    assert (segment.text, segment.held) == ("in_segment('repeat_buyers')", True)
    assert segment.children[0].children[0].to_dict() == {
        "text": "count(orders, where = status != 'cancelled', days = 90)", "value": 2, "held": True, "children": [],
    }  # fmt: skip
    assert (consent.text, consent.value, consent.held) == ("has_consent('ads')", False, False)


def test_a_configured_purpose_and_its_policy_apply(stored: Engine) -> None:
    consent = ConsentConfig(purposes={"ads": Purpose(policy=Policy.opt_out), "sms": Purpose()})
    rules = compile_rules({}, {"ads": "has_consent('ads')", "sms": "has_consent('sms')"}, consent)
    with stored.connect() as conn:
        ads = {r.profile_id for r in conn.execute(members_query(rules, "ads", stored.dialect.name, NOW))}
        sms = {r.profile_id for r in conn.execute(members_query(rules, "sms", stored.dialect.name, NOW))}
    assert (ads, sms) == ({"bob", "cy"}, set())


@pytest.mark.parametrize(
    ("computed", "segments", "problem"),
    [
        ({}, {"s": "count(orders) >"}, ("segments.s.where", "syntax error at the end: unexpected the end of the expression; expected a value")),
        ({}, {"s": "coutn(orders) > 1"}, ("segments.s.where", "at column 1: unknown function 'coutn' (did you mean 'count'?)")),
        ({}, {"s": "in_segment('promoter')", "promoters": "true"}, ("segments.s.where", "at column 12: unknown segment 'promoter' (did you mean 'promoters'?)")),
        ({}, {"s": "has_consent('adds')"}, ("segments.s.where", "at column 13: unknown purpose 'adds' (did you mean 'ads'?)")),
        ({}, {"s": "consent(ads)"}, ("segments.s.where", "at column 9: consent() takes a purpose name in quotes, like consent('ads')")),
        ({}, {"a": "in_segment('b')", "b": "not in_segment('a')"}, ("segments.a.where", "a cycle: segments.a -> segments.b -> segments.a")),
        ({"x": "y + 1", "y": "x * 2"}, {}, ("computed_traits.x.expression", "a cycle: computed_traits.x -> computed_traits.y -> computed_traits.x")),
        ({}, {"s": "count(orders, wher = 1)"}, ("segments.s.where", "count() has no argument 'wher' (did you mean 'where'?)")),
        ({}, {"s": "count(orders, days = 'x')"}, ("segments.s.where", "days takes a whole number of days, 1 or more")),
        ({}, {"s": "count(orders, since = '2024-13-01')"}, ("segments.s.where", "not a date: '2024-13-01'")),
        ({}, {"s": "count(orders, where = stauts == 'paid')"}, ("segments.s.where", "orders have no field 'stauts' (did you mean 'status'?)")),
        ({}, {"s": "count(events, where = plan == 'x')"}, ("segments.s.where", "(a property? write properties.plan)")),
        ({}, {"s": "count(orders, where = count(orders) > 1)"}, ("segments.s.where", "count() is an aggregate over a person's rows: not inside where")),
        ({}, {"s": "sum(orders.status)"}, ("segments.s.where", "sum() needs a number field; orders.status is text")),
        ({}, {"s": "sum(orders)"}, ("segments.s.where", "sum() needs a field: sum(orders.amount)")),
        ({}, {"s": "count(customers)"}, ("segments.s.where", "count() aggregates events, orders or nps")),
        ({}, {"s": "orders.amount > 10"}, ("segments.s.where", "'orders.amount' is a field of each of a person's orders: use it in an aggregate like sum(orders.amount)")),
        ({}, {"s": "max(orders.occurred_at)"}, ("segments.s.where", "times are for windows")),
        ({}, {"s": "count(orders, where = occurred_at > 5)"}, ("segments.s.where", "compare occurred_at with a date like '2024-06-01'")),
        ({}, {"s": "lower(country, 1)"}, ("segments.s.where", "lower() takes 1 argument, got 2")),
        ({}, {"s": "lower(country, where = 1)"}, ("segments.s.where", "lower() takes no keyword arguments (got 'where')")),
        ({}, {"s": "days_since(birthday) > 3"}, ("segments.s.where", "unknown function 'days_since'")),
        ({}, {"s": "age % 2 == 0"}, ("segments.s.where", "'%' is not available in segment rules")),
        ({}, {"s": "count(orders, days = 3, 1)"}, ("segments.s.where", "a positional argument after a keyword argument")),
    ],
)
def test_each_error_names_the_key_and_says_what(computed: dict[str, str], segments: dict[str, str], problem: tuple[str, str]) -> None:
    with pytest.raises(RulesError) as caught:
        compile_rules(computed, segments)
    found = [(".".join(map(str, where)), message) for where, message in caught.value.problems]
    assert any(where == problem[0] and problem[1] in message for where, message in found), found


def test_a_known_trait_vocabulary_catches_typos() -> None:
    with pytest.raises(RulesError, match=r"unknown trait 'contry' \(did you mean 'country'\?\)"):
        compile_rules({}, {"s": "contry == 'DE'"}, traits={"country", "age"})


def test_unknown_segment_or_trait_in_queries() -> None:
    rules = compile_rules(COMPUTED, SEGMENTS)
    with pytest.raises(RulesError, match="unknown segment 'nope'; segments: lapsed, recent_detractors, repeat_buyers"):
        members_query(rules, "nope", "sqlite", NOW)
    with pytest.raises(RulesError, match="unknown computed trait"):
        computed_values_query(rules, ["nope"], "sqlite", NOW)
    with pytest.raises(RulesError, match="syntax error"):
        where_query(rules, "country ==", "sqlite", NOW)


CONFIG = """
[store]
url = "sqlite:///{tmp}/store.sqlite"

[connectors.store]
type = "profile_store"

[computed_traits.revenue]
expression = "sum(orders.amount, days = 365)"

[segments.buyers]
where = "revenue > 100 and has_consent('adz')"
description = "spent over 100"

[segments.loop]
where = "in_segment('loop')"
"""
BROKEN = """
[computed_traits.broken]
expression = "sum(orders.amount, days = )"

[segments.typo]
wher = "true"
"""


def test_cdp_validate_reports_each_rule_problem_with_its_key_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "connectors.toml"
    config.write_text(CONFIG.format(tmp=tmp_path), encoding="utf-8")
    result = CliRunner().invoke(build_app(), ["validate", "-c", str(config)])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    for expected in (
        "segments.buyers.where: at column 31: unknown purpose 'adz' (did you mean 'ads'?)",
        "segments.loop.where: a cycle: segments.loop -> segments.loop",
    ):
        assert expected in output, output
    config.write_text(CONFIG.format(tmp=tmp_path).split("[computed_traits")[0] + BROKEN, encoding="utf-8")
    result = CliRunner().invoke(build_app(), ["validate", "-c", str(config)])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    for expected in (
        "computed_traits.broken.expression: Value error, syntax error at column 27: unexpected ')'; expected a value",
        "segments.typo.wher: unknown key",
    ):
        assert expected in output, output


def test_a_valid_config_compiles_to_rules(tmp_path: Path) -> None:
    from cdp_core.config import load_config
    from cdp_core.plugins import load_plugins

    from cdp_profiles import plugin as profiles_plugin
    from cdp_profiles.segments import rules_from

    config = tmp_path / "connectors.toml"
    text = CONFIG.format(tmp=tmp_path).split("[segments.buyers]")[0]
    config.write_text(text + '[segments.buyers]\nwhere = "revenue > 100"\ndescription = "spent over 100"\n', encoding="utf-8")
    plugins = load_plugins(entry_points=False, extra=[("profiles", profiles_plugin)])
    rules = rules_from(load_config(config, plugins, env={}))
    assert sorted(rules.computed) == ["revenue"]
    assert rules.segments["buyers"].description == "spent over 100"
