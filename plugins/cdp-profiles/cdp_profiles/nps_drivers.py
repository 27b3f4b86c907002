"""What drives NPS: the score of a group of answers against the rest, for every factor (docs/nps.md, "Drivers").

Factors, each one family of groups:

- ``trait``: every profile trait of the answering people (``nps_score`` / ``nps_category``, the answer
  itself, aside). A categorical trait gives one group per value (that value against every other
  answer); a numeric trait with three or more values is split at the median (``>= t`` against
  ``< t``, among the answers whose person has a number).
- ``computed_trait``: the materialized computed traits, read the same way.
- ``segment``: the members of each segment (as of its last refresh) against everyone else.
- ``behaviour``: orders per person, revenue per person and currency, and events per person and
  event name; people without any count 0; split at the median like numeric traits.

Only answers that resolved to a profile take part (an anonymous answer has no traits, segments or
behaviour). Each comparison is two independent samples: the difference of the two NPS, a 95 %
interval and a two-sided z test on the adjusted counts (:mod:`cdp_profiles.nps_stats`), and the
p-values adjusted for the number of comparisons with Benjamini-Hochberg.

Set-based: one aggregate query per family (the answers are counted per person in SQL, joined to
the family's values and grouped by factor and value), whatever the number of people.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, case, func, select
from sqlalchemy.sql import ColumnElement, Subquery

from cdp_profiles import nps_stats
from cdp_profiles.nps import Filters, NpsFigure, _answers, _counts, _figure
from cdp_profiles.store import tables
from cdp_profiles.store.owners import owned
from cdp_profiles.store.traits import NPS_TRAITS

Kind = Literal["trait", "computed_trait", "segment", "behaviour"]
MIN_N = 30
"""Fewest answers on each side of a comparison (``--min-n``)."""
ALPHA = 0.05
NUMERIC_MIN_VALUES = 3
"""A numeric factor with fewer distinct values is read as categorical (a 0/1 flag: each value vs the rest)."""

_profiles = tables.profiles
_orders = tables.orders
_events = tables.events
_computed = tables.computed_traits
_members = tables.segment_members


@dataclass(frozen=True)
class Driver:
    """One group against the rest of the answers, with the comparison and its adjusted p-value."""

    factor: str
    kind: Kind
    group: str
    figure: NpsFigure
    rest: NpsFigure
    comparison: nps_stats.Comparison
    p_adjusted: float = 1.0
    significant: bool = False

    @property
    def difference(self) -> float:
        """NPS of the group minus NPS of the rest, in points."""
        return 100 * self.comparison.difference

    def to_dict(self) -> dict[str, Any]:
        return {
            "factor": self.factor,
            "kind": self.kind,
            "group": self.group,
            "n_group": self.figure.n,
            "nps_group": round(self.figure.nps or 0.0, 2),
            "n_rest": self.rest.n,
            "nps_rest": round(self.rest.nps or 0.0, 2),
            "difference": round(self.difference, 2),
            "ci_low": round(100 * self.comparison.low, 2),
            "ci_high": round(100 * self.comparison.high, 2),
            "p_value": self.comparison.p_value,
            "p_adjusted": self.p_adjusted,
            "significant": self.significant,
        }


@dataclass
class DriverReport:
    """The ranked drivers, how many comparisons were made, and what was left out and why."""

    drivers: list[Driver] = field(default_factory=list)
    answers: int = 0
    """Answers that resolved to a profile (the population of every comparison)."""
    anonymous: int = 0
    """Answers without a profile, left out."""
    skipped: list[str] = field(default_factory=list)
    min_n: int = MIN_N
    alpha: float = ALPHA

    def to_dict(self) -> dict[str, Any]:
        return {
            "answers": self.answers,
            "anonymous_answers": self.anonymous,
            "comparisons": len(self.drivers),
            "min_n": self.min_n,
            "alpha": self.alpha,
            "correction": "benjamini-hochberg",
            "drivers": [d.to_dict() for d in self.drivers],
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class _Value:
    """One value of a factor and the answers of the people who have it."""

    value: Any
    figure: NpsFigure


def drivers(
    engine: Engine, config: Any = None, filters: Filters | None = None, *, min_n: int = MIN_N, alpha: float = ALPHA
) -> list[Driver]:
    """The drivers of NPS, ranked: significant ones first by the size of the difference, then the rest."""
    return analyse(engine, config, filters, min_n=min_n, alpha=alpha).drivers


def analyse(
    engine: Engine, config: Any = None, filters: Filters | None = None, *, min_n: int = MIN_N, alpha: float = ALPHA
) -> DriverReport:
    """Every comparison with what was skipped. ``config`` (a loaded cdp Config, optional) names the configured
    segments: one without an answering member (or never refreshed) is said in ``skipped``."""
    if min_n < 1:
        raise ValueError(f"min_n must be at least 1, got {min_n}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    filters = filters or Filters()
    per_person = _per_person(filters)
    report = DriverReport(min_n=min_n, alpha=alpha)
    found: list[tuple[str, Kind, str, NpsFigure, NpsFigure]] = []
    segments = _configured_segments(config)
    with engine.connect() as conn:
        total, anonymous = _totals(conn, per_person)
        report.answers, report.anonymous = total.n, anonymous
        if not total.n:
            return report
        dialect = conn.dialect.name
        families: list[tuple[Kind, dict[str, list[_Value]], bool]] = [
            ("trait", _trait_values(conn, per_person, dialect), False),
            ("computed_trait", _computed_values(conn, per_person), False),
            ("behaviour", _behaviour_values(conn, per_person), True),
        ]
        for kind, values, zero_filled in families:
            for factor in sorted(values):
                found.extend(_groups(factor, kind, values[factor], total, zero_filled, min_n, report.skipped))
        members = _segment_figures(conn, per_person)
    for name in sorted(members):
        group = members[name]
        rest = _minus(total, group)
        if group.n < min_n or rest.n < min_n:
            report.skipped.append(f"segment {name}: {group.n} answers in, {rest.n} out (fewer than {min_n} on a side)")
            continue
        found.append((f"segment {name}", "segment", "in", group, rest))
    for name in segments:
        if name not in members:
            report.skipped.append(f"segment {name}: no answering member (or never refreshed: cdp segments refresh)")
    report.drivers = _rank(found, alpha)
    return report


def _rank(found: list[tuple[str, Kind, str, NpsFigure, NpsFigure]], alpha: float) -> list[Driver]:
    compared = [
        (factor, kind, group, g, r, nps_stats.compare(_tuple(g), _tuple(r))) for factor, kind, group, g, r in found
    ]
    adjusted = nps_stats.benjamini_hochberg([c[-1].p_value for c in compared])
    out = [
        Driver(factor, kind, group, g, r, comparison, p_adj, p_adj < alpha)
        for (factor, kind, group, g, r, comparison), p_adj in zip(compared, adjusted, strict=True)
    ]
    return sorted(out, key=lambda d: (not d.significant, -abs(d.difference), d.comparison.p_value, d.factor, d.group))


# -- groups of one factor ------------------------------------------------------------------------


def _groups(
    factor: str,
    kind: Kind,
    values: list[_Value],
    total: NpsFigure,
    zero_filled: bool,
    min_n: int,
    skipped: list[str],
) -> list[tuple[str, Kind, str, NpsFigure, NpsFigure]]:
    """The comparisons of one factor: a median split for numbers, each value against the rest otherwise."""
    if zero_filled:  # behaviours: the answering people without any count 0
        values = [*values, _Value(0, _minus(total, _sum(v.figure for v in values)))]
        values = [v for v in values if v.figure.n]
    numbers = [v for v in values if _is_number(v.value)]
    distinct = len({float(v.value) for v in numbers})
    if zero_filled and distinct < 2:
        skipped.append(f"{factor}: every answering person has the same count")
        return []
    if len(numbers) == len(values) and (distinct >= NUMERIC_MIN_VALUES or zero_filled):
        return _median_split(factor, kind, numbers, min_n, skipped)
    out: list[tuple[str, Kind, str, NpsFigure, NpsFigure]] = []
    few = few_answers = 0
    tested = []
    for v in values:
        if isinstance(v.value, (list, dict)) or v.value is None:
            continue
        rest = _minus(total, v.figure)
        if v.figure.n < min_n or rest.n < min_n:
            few, few_answers = few + 1, few_answers + v.figure.n
            continue
        tested.append((v, rest))
    if any(isinstance(v.value, (list, dict)) for v in values):
        skipped.append(f"{factor}: lists and objects are not compared")
    if few:
        skipped.append(
            f"{factor}: {few} of {len(values)} values skipped ({few_answers} answers), "
            f"fewer than {min_n} answers in the group or in the rest"
        )
    covered = sum(v.figure.n for v, _ in tested) == total.n
    if len(tested) == 2 and covered:  # two values and nothing else: the second comparison mirrors the first
        first, second = tested
        tested = [first if _nps(first[0].figure) >= _nps(second[0].figure) else second]
    out.extend((factor, kind, _label(v.value), v.figure, rest) for v, rest in tested)
    return out


def _median_split(
    factor: str, kind: Kind, values: list[_Value], min_n: int, skipped: list[str]
) -> list[tuple[str, Kind, str, NpsFigure, NpsFigure]]:
    """``>= t`` against ``< t``, t the median of the answers' values (the next value up if t is the smallest)."""
    ordered = sorted(values, key=lambda v: float(v.value))
    distinct = sorted({float(v.value) for v in ordered})
    n = sum(v.figure.n for v in ordered)
    running, threshold = 0, distinct[-1]
    for v in ordered:
        running += v.figure.n
        if 2 * running >= n:
            threshold = float(v.value)
            break
    if threshold == distinct[0]:
        threshold = distinct[1]
    group = _sum(v.figure for v in ordered if float(v.value) >= threshold)
    rest = _sum(v.figure for v in ordered if float(v.value) < threshold)
    if group.n < min_n or rest.n < min_n:
        skipped.append(
            f"{factor}: split at {_number(threshold)} leaves {group.n} and {rest.n} answers "
            f"(fewer than {min_n} on a side)"
        )
        return []
    return [(factor, kind, f">= {_number(threshold)}", group, rest)]


# -- the queries: one per family -------------------------------------------------------------------


def _per_person(filters: Filters) -> Subquery:
    """promoters / passives / detractors per live profile (NULL: answers that resolved to nobody)."""
    answers = _answers(filters, person=True)
    return select(answers.c.profile_id, *_counts(answers.c.score)).group_by(answers.c.profile_id).subquery("pp")


def _sums(pp: Subquery) -> list[ColumnElement[Any]]:
    return [
        func.coalesce(func.sum(pp.c.promoters), 0).label("promoters"),
        func.coalesce(func.sum(pp.c.passives), 0).label("passives"),
        func.coalesce(func.sum(pp.c.detractors), 0).label("detractors"),
    ]


def _totals(conn: Connection, pp: Subquery) -> tuple[NpsFigure, int]:
    """The answers that resolved to a profile, and how many did not: one query."""
    known = pp.c.profile_id.is_not(None)

    def known_sum(column: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((known, column), else_=0)), 0)

    everything = pp.c.promoters + pp.c.passives + pp.c.detractors
    row = conn.execute(
        select(
            known_sum(pp.c.promoters).label("promoters"),
            known_sum(pp.c.passives).label("passives"),
            known_sum(pp.c.detractors).label("detractors"),
            func.coalesce(func.sum(case((known, 0), else_=everything)), 0).label("anonymous"),
        )
    ).one()
    return _figure(row), int(row.anonymous)


def _trait_values(conn: Connection, pp: Subquery, dialect: str) -> dict[str, list[_Value]]:
    """Every (trait, value) of the answering live profiles: one GROUP BY over the traits documents."""
    if dialect == "postgresql":
        each = func.json_each(_profiles.c.traits).table_valued("key", "value").alias("trait")
        value: ColumnElement[Any] = sa.cast(each.c.value, sa.Text)
    else:
        each = func.json_each(_profiles.c.traits).table_valued("key", "value", "type").alias("trait")
        value = case(
            (each.c.type.in_(("true", "false", "null")), each.c.type),
            (each.c.type == "text", func.json_quote(each.c.value)),
            (each.c.type == "real", func.printf("%!.17g", each.c.value)),
            else_=sa.cast(each.c.value, sa.Text),
        )
    stmt = (
        select(each.c.key.label("name"), value.label("value"), *_sums(pp))
        .select_from(pp.join(_profiles, _profiles.c.id == pp.c.profile_id).join(each, sa.true()))
        .group_by(each.c.key, value)
    )
    values = _collect(conn.execute(stmt))
    for name in NPS_TRAITS:  # the answer itself, not a driver of it
        values.pop(name, None)
    return values


def _computed_values(conn: Connection, pp: Subquery) -> dict[str, list[_Value]]:
    value = sa.cast(_computed.c.value, sa.Text)
    stmt = (
        select(_computed.c.name.label("name"), value.label("value"), *_sums(pp))
        .select_from(pp.join(_computed, _computed.c.profile_id == pp.c.profile_id))
        .group_by(_computed.c.name, value)
    )
    return _collect(conn.execute(stmt))


def _segment_figures(conn: Connection, pp: Subquery) -> dict[str, NpsFigure]:
    stmt = (
        select(_members.c.segment, *_sums(pp))
        .select_from(pp.join(_members, _members.c.profile_id == pp.c.profile_id))
        .group_by(_members.c.segment)
    )
    return {row.segment: _figure(row) for row in conn.execute(stmt)}


def _person_of(table: sa.Table) -> tuple[Any, ColumnElement[Any]]:
    """``table`` joined to the live profile its records resolved to, and that profile's id."""
    joined, owner = owned(table)
    source = joined.join(_profiles, _profiles.c.id == owner)
    return source, func.coalesce(_profiles.c.merged_into, _profiles.c.id)


def _behaviour_values(conn: Connection, pp: Subquery) -> dict[str, list[_Value]]:
    """orders count, revenue per currency and events per name, per answering person: three GROUP BYs."""
    out: dict[str, list[_Value]] = {}
    source, person = _person_of(_orders)
    orders = select(person.label("pid"), func.count().label("n")).select_from(source).group_by(person).subquery()
    stmt = (
        select(orders.c.n, *_sums(pp))
        .select_from(pp.join(orders, orders.c.pid == pp.c.profile_id))
        .group_by(orders.c.n)
    )
    out["orders count"] = [_Value(int(row.n), _figure(row)) for row in conn.execute(stmt)]
    currency = func.coalesce(_orders.c.currency, "")
    revenue = (
        select(person.label("pid"), currency.label("currency"), func.sum(_orders.c.amount).label("revenue"))
        .select_from(source)
        .where(_orders.c.amount.is_not(None))
        .group_by(person, currency)
        .subquery()
    )
    stmt = (
        select(revenue.c.currency, revenue.c.revenue, *_sums(pp))
        .select_from(pp.join(revenue, revenue.c.pid == pp.c.profile_id))
        .group_by(revenue.c.currency, revenue.c.revenue)
    )
    for row in conn.execute(stmt):
        name = f"revenue {row.currency}".strip()
        out.setdefault(name, []).append(_Value(_decimal(row.revenue), _figure(row)))
    source, person = _person_of(_events)
    events = (
        select(person.label("pid"), _events.c.name.label("name"), func.count().label("n"))
        .select_from(source)
        .group_by(person, _events.c.name)
        .subquery()
    )
    stmt = (
        select(events.c.name, events.c.n, *_sums(pp))
        .select_from(pp.join(events, events.c.pid == pp.c.profile_id))
        .group_by(events.c.name, events.c.n)
    )
    for row in conn.execute(stmt):
        out.setdefault(f"event {row.name}", []).append(_Value(int(row.n), _figure(row)))
    return {name: values for name, values in out.items() if values}


def _collect(rows: Iterable[Any]) -> dict[str, list[_Value]]:
    """name -> values, the same value written differently (JSON spacing, 1.0 and 1) merged."""
    merged: dict[str, dict[str, _Value]] = {}
    for row in rows:
        value = _parse(row.value)
        if value is None:
            continue
        key = json.dumps(float(value) if _is_number(value) else value, sort_keys=True)
        per_name = merged.setdefault(row.name, {})
        known = per_name.get(key)
        per_name[key] = _Value(value, _figure(row) + known.figure if known else _figure(row))
    return {name: list(values.values()) for name, values in merged.items()}


# -- small helpers --------------------------------------------------------------------------------


def _configured_segments(config: Any) -> list[str]:
    """The segments a loaded config names (none without a config)."""
    if config is None:
        return []
    from cdp_profiles.membership.engine import rules_of, segment_names

    return segment_names(rules_of(config))


def _parse(text: Any) -> Any:
    if text is None:
        return None
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _decimal(value: Any) -> float:
    return float(value) if isinstance(value, Decimal | int | float) else float(str(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _sum(figures: Iterable[NpsFigure]) -> NpsFigure:
    out = NpsFigure()
    for f in figures:
        out = out + f
    return out


def _minus(a: NpsFigure, b: NpsFigure) -> NpsFigure:
    return NpsFigure(a.promoters - b.promoters, a.passives - b.passives, a.detractors - b.detractors)


def _tuple(f: NpsFigure) -> tuple[int, int, int]:
    return f.promoters, f.passives, f.detractors


def _nps(f: NpsFigure) -> float:
    return f.nps if f.nps is not None else 0.0
