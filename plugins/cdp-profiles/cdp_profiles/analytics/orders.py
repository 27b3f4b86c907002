"""Order histories per person, read set-based from the store: the input of RFM and lifetime value.

A person is the *live* profile an order's record resolved to (``orders (stream, key) ->
record_index`` -> its person by cdp_profiles/store/owners.py, which always names the live profile;
merged profiles are never selected), as the segments read orders. Two statements, each one
``GROUP BY`` whatever the number of people, the same on SQLite and PostgreSQL:

- :func:`histories`: per person and currency, the number of orders, the first and last order
  time and the total amount (RFM, ``cdp analytics rfm``);
- :func:`purchase_days`: per person, UTC day and currency, the orders and their amount
  (lifetime value: purchases on the same day are one purchase).

What counts as a purchase: an order with a time (``occurred_at``) whose ``status`` is not one
of ``[analytics] exclude_statuses`` (case-insensitive; by default cancelled, canceled,
refunded, voided: the words shops use for an order that did not stand). An order without a
status counts. Money: :class:`Money` converts each currency to ``[analytics] currency`` with
``[analytics.rates]``; an order in a currency it cannot convert still counts as a purchase
(recency, frequency) but its amount is left out of every sum and reported, never mixed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from cdp_core.timeutil import as_utc
from sqlalchemy import Connection, Select, func, select

from cdp_profiles.analytics.config import AnalyticsConfig
from cdp_profiles.store import tables
from cdp_profiles.store.owners import owned, owner_of

_orders = tables.orders
_profiles = tables.profiles
NO_CURRENCY = ""
"""The currency of orders that name none: taken to be the base currency (docs/analytics.md)."""


@dataclass
class Skipped:
    """Orders read but not in the figures: excluded by status, or their amount left out (by currency)."""

    excluded_orders: int = 0
    left_out: dict[str, tuple[int, float]] = field(default_factory=dict)
    """currency -> (orders, amount) not converted: no rate for it."""

    def add_left_out(self, currency: str, orders: int, amount: float) -> None:
        n, total = self.left_out.get(currency, (0, 0.0))
        self.left_out[currency] = (n + orders, total + amount)

    def to_dict(self) -> dict[str, Any]:
        return {
            "excluded_orders": self.excluded_orders,
            "left_out": {
                c or "(none)": {"orders": n, "amount": round(a, 4)} for c, (n, a) in sorted(self.left_out.items())
            },
        }


@dataclass(frozen=True)
class Money:
    """Converts amounts to one base currency; None for a currency it cannot convert."""

    base: str
    rates: dict[str, float]

    def factor(self, currency: str) -> float | None:
        if currency in (self.base, NO_CURRENCY):
            return 1.0
        return self.rates.get(currency)


def money(config: AnalyticsConfig, currencies: dict[str, int]) -> Money:
    """The base currency: ``[analytics] currency``, else the currency most orders are in (a tie: the first by name)."""
    if config.currency is not None:
        return Money(config.currency, dict(config.rates))
    named = {c: n for c, n in currencies.items() if c != NO_CURRENCY}
    base = min(named, key=lambda c: (-named[c], c)) if named else NO_CURRENCY
    return Money(base, {})


@dataclass
class History:
    """One person's purchases: how many, first and last time, and the amount in the base currency."""

    profile_id: str
    orders: int
    first: datetime
    last: datetime
    amount: float | None
    """Total in the base currency; None when none of their orders could be converted."""

    @property
    def mean_amount(self) -> float | None:
        return None if self.amount is None else self.amount / self.orders


def person_orders(config: AnalyticsConfig) -> Select[Any]:
    """The counted orders with their live profile (``pid``), day-agnostic; the base of both reads."""
    joined, owner = owned(_orders)
    return (
        select(owner.label("pid"))
        .select_from(joined.join(_profiles, _profiles.c.id == owner))
        .where(_profiles.c.merged_into.is_(None), _orders.c.occurred_at.is_not(None))
    )


def _excluded(config: AnalyticsConfig) -> Any:
    status = func.lower(func.coalesce(_orders.c.status, ""))
    return status.in_(config.exclude_statuses) if config.exclude_statuses else sa.false()


def _currency() -> Any:
    return func.coalesce(_orders.c.currency, NO_CURRENCY)


def histories(conn: Connection, config: AnalyticsConfig) -> tuple[list[History], Money, Skipped]:
    """Every live profile with a counted order: one statement (per person, currency, excluded or not)."""
    excluded = sa.case((_excluded(config), 1), else_=0).label("excluded")
    currency = _currency().label("currency")
    stmt = person_orders(config).add_columns(
        currency, excluded, func.count().label("n"), func.min(_orders.c.occurred_at).label("first"),
        func.max(_orders.c.occurred_at).label("last"), func.sum(_orders.c.amount).label("amount"),
    ).group_by(owner_of(), currency, excluded)  # fmt: skip
    rows = [r for r in conn.execute(stmt)]
    skipped = Skipped()
    per_currency: dict[str, int] = defaultdict(int)
    for r in rows:
        if r.excluded:
            skipped.excluded_orders += int(r.n)
        else:
            per_currency[r.currency] += int(r.n)
    rate = money(config, per_currency)
    people: dict[str, History] = {}
    for r in sorted((r for r in rows if not r.excluded), key=lambda r: (r.pid, r.currency)):
        first, last = as_utc(_moment(r.first)), as_utc(_moment(r.last))
        factor = rate.factor(r.currency)
        amount = float(r.amount or 0)
        converted = None if factor is None else amount * factor
        if factor is None:
            skipped.add_left_out(r.currency, int(r.n), amount)
        h = people.get(r.pid)
        if h is None:
            people[r.pid] = History(r.pid, int(r.n), first, last, converted)
            continue
        h.orders += int(r.n)
        h.first, h.last = min(h.first, first), max(h.last, last)
        if converted is not None:
            h.amount = converted + (h.amount or 0.0)
    return list(people.values()), rate, skipped


@dataclass(frozen=True)
class Purchase:
    """The orders of one person on one UTC day: one purchase for the lifetime-value models."""

    profile_id: str
    day: date
    amount: float | None
    """In the base currency; None when no order of the day could be converted."""


def purchase_days(conn: Connection, config: AnalyticsConfig) -> tuple[list[Purchase], Money, Skipped]:
    """Per person and UTC day, the counted orders' amount in the base currency: one statement."""
    when = _orders.c.occurred_at
    day = func.date(func.timezone("UTC", when) if conn.dialect.name == "postgresql" else when).label("day")
    currency = _currency().label("currency")
    stmt = (
        person_orders(config)
        .add_columns(day, currency, func.count().label("n"), func.sum(_orders.c.amount).label("amount"))
        .where(sa.not_(_excluded(config)))
        .group_by(owner_of(), day, currency)
    )
    rows = list(conn.execute(stmt))
    per_currency: dict[str, int] = defaultdict(int)
    for r in rows:
        per_currency[r.currency] += int(r.n)
    rate = money(config, per_currency)
    skipped = Skipped()
    days: dict[tuple[str, date], float | None] = {}
    for r in rows:
        key = (r.pid, _as_date(r.day))
        factor = rate.factor(r.currency)
        amount = float(r.amount or 0)
        if factor is None:
            skipped.add_left_out(r.currency, int(r.n), amount)
            days.setdefault(key, None)
            continue
        before = days.get(key)
        days[key] = amount * factor + (before or 0.0)
    out = [Purchase(pid, d, a) for (pid, d), a in days.items()]
    out.sort(key=lambda p: (p.profile_id, p.day))
    return out, rate, skipped


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
