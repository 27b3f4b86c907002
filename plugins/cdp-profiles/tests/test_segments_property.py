"""The acceptance property: each segment's and computed trait's SQL gives what the in-memory evaluation gives.

Random people (traits of every kind, events, orders, NPS answers, consents, identities)
and random rules drawn from the language's grammar (aggregates with where/days/since/until,
consent, other segments, computed traits, comparisons of every kind pair, arithmetic,
functions), on SQLite and PostgreSQL. Derandomized, so CI sees the same examples every run.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from cdp_profiles.segments import Person, compile_rules, computed_values_query, decode_value, members_query
from cdp_profiles.segments.memory import computed_values, is_member

from segment_data import NOW, clear, store_people

TEXTS = ["DE", "AT", "", "yes", "no", "1", "2.5", "-3", "abc", "10", "Abc", "true", " no", "0"]
TRAITS = ["country", "age", "vip", "tags", "plan"]

# -- people ------------------------------------------------------------------------------------

scalars = st.one_of(
    st.sampled_from(TEXTS),
    st.integers(-5, 20),
    st.integers(-50, 50).map(lambda n: n / 10),
    st.booleans(),
    st.none(),
)
trait_values = st.one_of(scalars, st.lists(st.sampled_from(TEXTS[:6]) | st.integers(0, 3), max_size=3))
moments = st.one_of(st.none(), st.integers(0, 400 * 24).map(lambda h: NOW - timedelta(hours=h)))


@st.composite
def people(draw: Any) -> list[Person]:
    out = []
    for n in range(draw(st.integers(1, 6))):
        pid = f"p{n:02d}"
        traits = draw(st.dictionaries(st.sampled_from(TRAITS), trait_values, max_size=4))
        emails = draw(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from([None, "k1", "k2"])),
                               max_size=2, unique_by=lambda t: t[0]))  # fmt: skip
        identities = [{"type": "email", "value": f"{v}-{pid}@x.de", "first_seen": seen} for v, seen in emails]
        events = [
            {"name": draw(st.sampled_from(["email_opened", "page_viewed", "signup"])),
             "properties": draw(st.dictionaries(st.sampled_from(["plan", "n"]), scalars, max_size=2)),
             "occurred_at": draw(moments)}
            for _ in range(draw(st.integers(0, 4)))
        ]  # fmt: skip
        orders = [
            {"order_id": f"o{i}", "amount": draw(st.none() | st.integers(0, 50000).map(lambda c: Decimal(c) / 100)),
             "currency": draw(st.sampled_from(["EUR", "USD"])), "status": draw(st.sampled_from(["paid", "cancelled", None])),
             "items": None, "occurred_at": draw(moments)}
            for i in range(draw(st.integers(0, 4)))
        ]  # fmt: skip
        nps = []
        for _ in range(draw(st.integers(0, 3))):
            score = draw(st.integers(0, 10))
            category = "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
            nps.append({"score": score, "category": category, "comment": None,
                        "survey": draw(st.sampled_from([None, "q1"])), "channel": None, "answered_at": draw(moments)})  # fmt: skip
        consents = [
            {"purpose": draw(st.sampled_from(["ads", "email"])), "status": draw(st.sampled_from(["granted", "denied", "revoked"])),
             "source": None, "occurred_at": draw(moments), "stream": draw(st.sampled_from(["a", "b"]))}
            for _ in range(draw(st.integers(0, 3)))
        ]  # fmt: skip
        out.append(Person(pid, traits, identities, events, orders, nps, consents))
    return out


# -- rules -------------------------------------------------------------------------------------

literals = st.one_of(
    st.sampled_from(["'DE'", "'abc'", "''", "'yes'", "'2.5'", "'10'", "'-3'", "true", "false", "null"]),
    st.integers(-3, 12).map(str),
    st.sampled_from(["2.5", "0.5", "100.0"]),
)
ROW_FIELDS = {
    "events": ["name", "properties.plan", "properties.n"],
    "orders": ["amount", "status", "currency", "order_id"],
    "nps": ["score", "category", "survey"],
}
ROW_LITERALS = {
    "events": ["'email_opened'", "'signup'", "'DE'", "1", "2.5", "true"],
    "orders": ["'paid'", "'cancelled'", "'EUR'", "100", "20.5", "null"],
    "nps": ["'detractor'", "'promoter'", "'q1'", "6", "9", "null"],
}
NUMBER_FIELDS = {"events": ["properties.n", "properties.plan"], "orders": ["amount"], "nps": ["score"]}
VALUE_FIELDS = {"events": ["name"], "orders": ["amount", "status", "currency"], "nps": ["score", "category", "survey"]}
TIME = {"events": "occurred_at", "orders": "occurred_at", "nps": "answered_at"}
OPS = ["==", "!=", "<", "<=", ">", ">="]


@st.composite
def row_conditions(draw: Any, source: str, depth: int = 0) -> str:
    choice = draw(st.integers(0, 5 if depth < 2 else 2))
    if choice <= 1:
        return f"{draw(st.sampled_from(ROW_FIELDS[source]))} {draw(st.sampled_from(OPS))} {draw(st.sampled_from(ROW_LITERALS[source]))}"
    if choice == 2:
        day = draw(st.sampled_from(["'2025-01-01'", "'2024-06-30'", "'2025-02-27T08:00:00Z'"]))
        return f"{TIME[source]} {draw(st.sampled_from(OPS))} {day}"
    if choice == 3:
        items = ", ".join(draw(st.lists(st.sampled_from(ROW_LITERALS[source]), min_size=1, max_size=3)))
        return f"{draw(st.sampled_from(ROW_FIELDS[source]))} {draw(st.sampled_from(['in', 'not in']))} [{items}]"
    if choice == 4:
        return f"not ({draw(row_conditions(source, depth + 1))})"
    joiner = draw(st.sampled_from(["and", "or"]))
    return f"({draw(row_conditions(source, depth + 1))} {joiner} {draw(row_conditions(source, depth + 1))})"


@st.composite
def aggregates(draw: Any) -> str:
    source = draw(st.sampled_from(["events", "orders", "nps"]))
    fn = draw(st.sampled_from(["count", "count", "sum", "avg", "min", "max", "first", "last", "most_frequent", "distinct",
                               "moving_avg", "ewma"]))  # fmt: skip
    if fn == "count":
        target = draw(st.sampled_from([source, f"{source}.{ROW_FIELDS[source][0]}"]))
    elif fn in ("sum", "avg", "min", "max", "moving_avg", "ewma"):
        target = f"{source}.{draw(st.sampled_from(NUMBER_FIELDS[source]))}"
    else:
        target = f"{source}.{draw(st.sampled_from(VALUE_FIELDS[source]))}"
    args = [target]
    if fn == "moving_avg":
        args.append(f"n = {draw(st.sampled_from([1, 2, 3]))}")
    elif fn == "ewma":
        args.append(f"alpha = {draw(st.sampled_from(['0.3', '0.5', '1']))}")
    if draw(st.booleans()):
        args.append(f"where = {draw(row_conditions(source))}")
    window = draw(st.sampled_from(["", "days = 30", "days = 90", "since = '2024-12-01'", "until = '2025-01-31'",
                                   "since = '2024-06-01', until = '2025-02-01'"]))  # fmt: skip
    if window:
        args.append(window)
    return f"{fn}({', '.join(args)})"


@st.composite
def values(draw: Any, depth: int = 0) -> str:
    choice = draw(st.integers(0, 9 if depth < 2 else 5))
    if choice == 0:
        return draw(literals)
    if choice in (1, 2):
        return draw(st.sampled_from([*TRAITS, "spend", "identifiers.email", "`country`"]))
    if choice in (3, 4):
        return draw(aggregates())
    if choice == 5:
        return draw(st.sampled_from(["consent('ads')", "consent('email')", "has_consent('ads')", "has_consent('analytics')",
                                     "in_segment('base')"]))  # fmt: skip
    if choice == 6:
        return f"({draw(values(depth + 1))} {draw(st.sampled_from(['+', '-', '*', '/']))} {draw(values(depth + 1))})"
    if choice == 7:
        fn = draw(st.sampled_from(["lower", "upper", "len"]))
        return f"{fn}({draw(values(depth + 1))})"
    if choice == 8:
        return f"coalesce({draw(values(depth + 1))}, {draw(values(depth + 1))})"
    return f"-{draw(values(depth + 1))}"


@st.composite
def conditions(draw: Any, depth: int = 0) -> str:
    choice = draw(st.integers(0, 7 if depth < 2 else 3))
    if choice <= 1:
        return f"{draw(values())} {draw(st.sampled_from(OPS))} {draw(values())}"
    if choice == 2:
        items = ", ".join(draw(st.lists(literals, min_size=1, max_size=3)))
        return f"{draw(values())} {draw(st.sampled_from(['in', 'not in']))} [{items}]"
    if choice == 3:
        item = draw(st.sampled_from(["'DE'", "'a'", "1", "'email_opened'", "2.5", "'paid'"]))
        container = draw(st.sampled_from(["tags", "country", "distinct(events.name)", "distinct(orders.amount, days = 90)",
                                          "plan"]))  # fmt: skip
        return f"{item} in {container}"
    if choice == 4:
        return draw(values())
    if choice == 5:
        return f"not {draw(conditions(depth + 1))}"
    joiner = draw(st.sampled_from(["and", "or"]))
    return f"({draw(conditions(depth + 1))} {joiner} {draw(conditions(depth + 1))})"


BASE = {"spend": "sum(orders.amount, where = status != 'cancelled', days = 365)"}
BASE_SEGMENTS = {"base": "count(orders, days = 90) >= 2 or has_consent('email')"}


def _same(sql: Any, memory: Any) -> bool:
    if isinstance(sql, list) and isinstance(memory, list):
        return len(sql) == len(memory) and all(_same(a, b) for a, b in zip(sql, memory, strict=True))
    if isinstance(memory, bool) or isinstance(sql, bool):
        return sql is memory
    return bool(sql == memory)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                                   HealthCheck.too_slow])  # fmt: skip
@given(data=people(), rules=st.lists(st.one_of(conditions(), values()), min_size=1, max_size=4))
def test_sql_and_memory_agree_on_members_and_values(store_engine: Engine, data: list[Person], rules: list[str]) -> None:
    compiled = compile_rules(
        {**BASE, **{f"c{i}": rule for i, rule in enumerate(rules)}},
        {**BASE_SEGMENTS, **{f"s{i}": rule for i, rule in enumerate(rules)}},
    )
    clear(store_engine)
    store_people(store_engine, data, merged_traits={t: "yes" for t in TRAITS})
    dialect = store_engine.dialect.name
    with store_engine.connect() as conn:
        for name in compiled.segments:
            sql = {row.profile_id for row in conn.execute(members_query(compiled, name, dialect, NOW))}
            memory = {p.profile_id for p in data if is_member(compiled, name, p, NOW)}
            assert sql == memory, f"segment {name}: {compiled.segments[name].source}"
        rows = conn.execute(computed_values_query(compiled, None, dialect, NOW)).all()
    got = {(r.profile_id, r.name): decode_value(r.value) for r in rows}
    assert {pid for pid, _ in got} == {p.profile_id for p in data}
    for person in data:
        for name, value in computed_values(compiled, person, NOW).items():
            sql_value = got[(person.profile_id, name)]
            assert _same(sql_value, value), f"{name} = {compiled.computed[name].source} for {person.profile_id}: SQL {sql_value!r}, memory {value!r}"


pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
