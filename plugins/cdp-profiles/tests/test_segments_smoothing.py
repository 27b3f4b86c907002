"""moving_avg() and ewma() in rules: hand-computed on SQLite and PostgreSQL, the same in memory."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from cdp_core.store import engine as store_engine_module
from segment_data import NOW, store_people
from sqlalchemy import Engine

from cdp_profiles.segments import Person, RulesError, compile_rules, computed_values_query, decode_value, members_query
from cdp_profiles.segments.memory import computed_values, ewma


def day(n: int) -> datetime:
    return datetime(2025, 1, n, 12, tzinfo=UTC)


def order(key: str, amount: Any, when: datetime | None, status: str = "paid") -> dict[str, Any]:
    return {"key": key, "order_id": key, "amount": amount, "currency": "EUR", "status": status, "items": None,
            "occurred_at": when}  # fmt: skip


def people() -> list[Person]:
    # Anna's orders, latest first by time: 30.50 (Jan 5, cancelled), 40 (Jan 4), no amount (Jan 3: skipped),
    # 20 (Jan 2), 10 (Jan 1), then 100 without a time (the oldest).
    anna = [order("a1", Decimal(10), day(1)), order("a2", Decimal(20), day(2)), order("a3", None, day(3)),
            order("a4", Decimal(40), day(4)), order("a5", Decimal(100), None),
            order("a6", Decimal("30.50"), day(5), status="cancelled")]  # fmt: skip
    return [
        Person("anna", {}, [], [], anna, [], []),
        Person("ben", {}, [], [], [], [], []),  # no orders: null
        Person("cara", {}, [], [], [order("c1", Decimal(7), day(9))], [], []),
    ]


COMPUTED = {
    # (30.5 + 40 + 20) / 3 = 30.1666...
    "ma3": "moving_avg(orders.amount, n = 3)",
    # not cancelled: (40 + 20 + 10) / 3 = 23.333...
    "ma3_paid": "moving_avg(orders.amount, n = 3, where = status != 'cancelled')",
    # all five: 200.5 / 5 = 40.1
    "ma10": "moving_avg(orders.amount, n = 10)",
    # weights 1, 1/2, 1/4, 1/8, 1/16 on 30.5 40 20 10 100: (30.5 + 20 + 5 + 1.25 + 6.25) / 1.9375 = 32.516129...
    "ewma_half": "ewma(orders.amount, alpha = 0.5)",
    # the last 60 days leave the undated order out; weights 1 .7 .49 .343 on 30.5 40 20 10:
    # (30.5 + 28 + 9.8 + 3.43) / 2.533 = 28.3181997...
    "ewma_60d": "ewma(orders.amount, alpha = 0.3, days = 60)",
    "ewma_one": "ewma(orders.amount, alpha = 1)",  # the latest value
}
EXPECTED = {
    "anna": {"ma3": 30.166666666666668, "ma3_paid": 23.333333333333332, "ma10": 40.1, "ewma_half": 32.516129,
             "ewma_60d": 28.3182, "ewma_one": 30.5},
    "ben": dict.fromkeys(COMPUTED),
    "cara": dict.fromkeys(COMPUTED, 7.0),
}  # fmt: skip
SEGMENTS = {"big_recent": "ewma(orders.amount, alpha = 0.5) > 30", "small": "moving_avg(orders.amount, n = 2) < 10"}


def test_hand_computed_on_both_databases(store_engine: Engine) -> None:
    store_people(store_engine, people())
    rules = compile_rules(COMPUTED, SEGMENTS)
    dialect = store_engine.dialect.name
    with store_engine.connect() as conn:
        rows = conn.execute(computed_values_query(rules, None, dialect, NOW)).all()
        big = {r[0] for r in conn.execute(members_query(rules, "big_recent", dialect, NOW))}
        small = {r[0] for r in conn.execute(members_query(rules, "small", dialect, NOW))}
    got: dict[str, dict[str, Any]] = {}
    for pid, name, value in rows:
        got.setdefault(pid, {})[name] = decode_value(value)
    assert got == EXPECTED
    assert big == {"anna"} and small == {"cara"}
    for person in people():  # the in-memory evaluation agrees exactly
        assert computed_values(rules, person, NOW) == EXPECTED[person.profile_id]


def test_ewma_reference() -> None:
    assert ewma([], 0.3) is None
    assert ewma([5.0], 0.3) == 5.0
    assert ewma([30.5, 40, 20, 10, 100], 0.5) == 32.516129
    assert ewma([1.0, 2.0], 1.0) == 1.0


def test_without_sqlite_math_functions_the_engine_brings_exp_and_ln(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: dict[str, Any] = {}

    class Connection:  # a sqlite3 connection that records what is registered on it
        def __init__(self) -> None:
            self.real = sqlite3.connect(":memory:")

        def create_function(self, name: str, narg: int, fn: Any, *, deterministic: bool = False) -> None:
            registered[name] = (narg, fn, deterministic)
            self.real.create_function(name, narg, fn, deterministic=deterministic)

        def cursor(self) -> sqlite3.Cursor:
            return self.real.cursor()

    monkeypatch.setattr(store_engine_module, "SQLITE_MATH", False)
    connection = Connection()
    store_engine_module.configure_sqlite(connection)
    assert set(registered) == {"exp", "ln"} and all(d for _, _, d in registered.values())
    assert connection.real.execute("SELECT exp(2 * ln(0.7)), ln(0), exp(NULL)").fetchone() == (
        0.48999999999999994,
        None,
        None,
    )
    registered.clear()
    monkeypatch.setattr(store_engine_module, "SQLITE_MATH", True)
    store_engine_module.configure_sqlite(Connection())
    assert registered == {}


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("ewma(orders.amount) > 1", "ewma() needs alpha: ewma(orders.amount, alpha = 0.3)"),
        ("ewma(orders.amount, alpha = 0) > 1", "alpha is a number above 0 and at most 1"),
        ("ewma(orders.amount, alpha = 1.5) > 1", "alpha is a number above 0 and at most 1"),
        ("ewma(orders.amount, alpha = 'x') > 1", "alpha is a number above 0 and at most 1"),
        ("moving_avg(orders.amount) > 1", "moving_avg() needs n: moving_avg(orders.amount, n = 3)"),
        ("moving_avg(orders.amount, n = 0) > 1", "n is a whole number of rows from 1 to 1000"),
        ("moving_avg(orders.amount, n = 2.5) > 1", "n is a whole number of rows from 1 to 1000"),
        ("moving_avg(orders.amount, alpha = 0.3) > 1", "moving_avg() has no argument 'alpha'"),
        ("ewma(orders.amount, n = 3) > 1", "ewma() has no argument 'n'"),
        ("moving_avg(orders.status, n = 3) > 1", "moving_avg() needs a number field; orders.status is text"),
        ("ewma(orders, alpha = 0.3) > 1", "ewma() needs a field"),
    ],
)
def test_bad_arguments_say_what(rule: str, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        compile_rules({}, {"s": rule})
    assert any(where == ("segments", "s", "where") and message in text for where, text in caught.value.problems), (
        caught.value.problems
    )
