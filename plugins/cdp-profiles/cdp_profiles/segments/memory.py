"""Rules evaluated in memory over one :class:`Person`: the same answers as the SQL, and why."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from cdp_core.timeutil import as_utc

from cdp_profiles.consent import allowed
from cdp_profiles.segments import values as v
from cdp_profiles.segments.language import (
    SMOOTHING,
    TIME_COLUMN,
    Agg,
    Arith,
    BoolOp,
    Compare,
    Computed,
    ConsentStatus,
    DateCompare,
    Func,
    HasConsent,
    Ident,
    In,
    InSegment,
    ListLit,
    Lit,
    Node,
    Not,
    RowField,
    Stored,
    Trait,
    kind_of,
)
from cdp_profiles.segments.person import Person
from cdp_profiles.segments.rules import Rules

SCALE = 10_000
"""Sums and averages add values rounded to 4 decimals, exactly (as integers of 1/10000)."""
EWMA_DECIMALS = 6
"""ewma() rounds its result to this many decimals (half away from zero): the two databases add in any order."""


def ewma(latest_first: Sequence[float], alpha: float) -> float | None:
    """The exponentially weighted mean of ``latest_first``: weights ``(1 - alpha)^k``, k = 0 for the latest.

    ``exp(k * ln(1 - alpha))`` as the SQL computes it (alpha 1: the latest value alone); rounded to
    EWMA_DECIMALS. None without values.
    """
    if not latest_first:
        return None
    if alpha >= 1:
        weights = [1.0] + [0.0] * (len(latest_first) - 1)
    else:
        c = math.log(1 - alpha)
        weights = [math.exp(k * c) for k in range(len(latest_first))]
    mean = sum(w * x for w, x in zip(weights, latest_first, strict=True)) / sum(weights)
    step = Decimal(1).scaleb(-EWMA_DECIMALS)
    return float(Decimal(repr(mean)).quantize(step, rounding=ROUND_HALF_UP))


@dataclass
class Explanation:
    """One condition of a rule: its text, its value for the person, whether it held, and its parts."""

    text: str
    value: Any
    held: bool
    children: list[Explanation] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "value": self.value, "held": self.held,
                "children": [c.to_dict() for c in self.children]}  # fmt: skip


def evaluate(rules: Rules, segment_or_expression: str, person: Person, now: datetime) -> Any:
    """A segment's membership (bool), a computed trait's value, or else an ad-hoc expression's value."""
    return _Evaluator(rules, person, now).value(_target(rules, segment_or_expression))


def is_member(rules: Rules, segment: str, person: Person, now: datetime) -> bool:
    """Whether ``person`` is in ``segment`` at ``now``."""
    return v.truthy(_Evaluator(rules, person, now).value(rules.rule(segment).node))


def computed_values(rules: Rules, person: Person, now: datetime, names: list[str] | None = None) -> dict[str, Any]:
    """name -> value of the computed traits ``names`` (None: all) for ``person``."""
    evaluator = _Evaluator(rules, person, now)
    return {name: evaluator.value(rules.computed[name].node) for name in (names or sorted(rules.computed))}


def explain(rules: Rules, segment_or_expression: str, person: Person, now: datetime) -> Explanation:
    """The tree of conditions of a segment (or computed trait, or expression) with their values for ``person``."""
    return _Evaluator(rules, person, now).explain(_target(rules, segment_or_expression))


def _target(rules: Rules, name: str) -> Node:
    if name in rules.segments:
        return InSegment(name, f"in_segment({name!r})")
    if name in rules.computed:
        return rules.computed[name].node
    return rules.compile(name)


def _moment(value: Any) -> datetime | None:
    return None if value is None else as_utc(value)


def _exact(value: Any) -> int | None:
    """A value's numeric reading rounded to 4 decimals (half away from zero), in units of 1/10000."""
    kind = kind_of(value)
    if kind == "number":
        exact = value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
    elif kind == "text" and v.NUMERIC_TEXT.fullmatch(value):
        exact = Decimal(value)
    else:
        return None
    return int((exact * SCALE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _order(row: dict[str, Any], time: str) -> tuple[Any, ...]:
    moment = _moment(row.get(time))
    return (moment is not None, moment or datetime.min, str(row.get("stream", "")), str(row.get("key", "")))


class _Evaluator:
    def __init__(self, rules: Rules, person: Person, now: datetime) -> None:
        self.rules, self.person, self.now = rules, person, as_utc(now)
        self.cache: dict[Node, Any] = {}

    # -- the person ---------------------------------------------------------------------

    def value(self, node: Node) -> Any:
        if isinstance(node, (Agg, InSegment, Computed)):
            if node not in self.cache:
                self.cache[node] = self._value(node)
            return self.cache[node]
        return self._value(node)

    def _value(self, node: Node) -> Any:
        match node:
            case Lit(value=value):
                return value
            case ListLit(items=items):
                return [self.value(item) for item in items]
            case Trait(name=name):
                return self.person.traits.get(name)
            case Ident(type=type_name):
                return self.identifier(type_name)
            case ConsentStatus(purpose=purpose):
                return self.consent(purpose)
            case HasConsent(purpose=purpose, policy=policy):
                return allowed(self.consent(purpose), policy)
            case InSegment(name=name):
                return v.truthy(self.value(self.rules.segments[name].node))
            case Computed(name=name):
                return self.value(self.rules.computed[name].node)
            case Stored(name=name):
                return self.person.stored.get(name)
            case Agg():
                return self.aggregate(node)
        return self.operator(node, self.value)

    def operator(self, node: Node, value: Callable[[Node], Any]) -> Any:
        """The operators and functions, the same for the person and for a row (``value`` reads the names)."""
        match node:
            case Lit(value=literal):
                return literal
            case Compare(op=op, left=left, right=right):
                return v.compare(op, value(left), value(right))
            case BoolOp(op="and", items=items):
                return all(v.truthy(value(item)) for item in items)
            case BoolOp(items=items):
                return any(v.truthy(value(item)) for item in items)
            case Not(item=item):
                return not v.truthy(value(item))
            case In(item=item, container=container, negated=negated):
                if isinstance(container, ListLit):
                    found = any(v.equals(value(item), value(element)) for element in container.items)
                else:
                    found = v.contained(value(item), value(container))
                return found != negated
            case Arith(op=op, left=left, right=right):
                return v.arith(op, value(left), value(right))
            case Func(name=name, args=args):
                return self.function(name, [value(arg) for arg in args])
        raise AssertionError(f"not a value here: {node!r}")

    @staticmethod
    def function(name: str, args: list[Any]) -> Any:
        first = args[0]
        if name in ("lower", "upper"):
            return None if kind_of(first) != "text" else v.ascii_lower(first) if name == "lower" else v.ascii_upper(first)
        if name == "len":
            return len(first) if kind_of(first) in ("text", "list") else None
        return next((a for a in args if a is not None and a != ""), None)  # coalesce

    def identifier(self, type_name: str) -> str | None:
        """The person's earliest-seen identifier of that type (then the smallest value)."""
        ids = [i for i in self.person.identities if i.get("type") == type_name]
        ids.sort(key=lambda i: (i.get("first_seen") is None, i.get("first_seen") or "", i["value"]))
        return ids[0]["value"] if ids else None

    def consent(self, purpose: str) -> str | None:
        """The latest decision (cdp_profiles/consent.py: timeless rows oldest, ties by stream then key)."""
        rows = [c for c in self.person.consents if c.get("purpose") == purpose]
        return max(rows, key=lambda c: _order(c, "occurred_at"))["status"] if rows else None

    # -- a person's rows ------------------------------------------------------------------

    def rows(self, agg: Agg) -> list[dict[str, Any]]:
        time = TIME_COLUMN[agg.source]
        window = agg.window
        start = self.now - timedelta(days=window.days) if window.days is not None else None
        bounded = window.days is not None or window.since is not None or window.until is not None
        kept = []
        for row in getattr(self.person, agg.source):
            moment = _moment(row.get(time))
            if bounded and moment is None:
                continue
            if moment is not None:
                if start is not None and not start <= moment <= self.now:
                    continue
                if window.since is not None and moment < window.since:
                    continue
                if window.until is not None and moment >= window.until:
                    continue
            if agg.where is not None and not v.truthy(self.row_value(agg.where, row)):
                continue
            kept.append(row)
        return kept

    def row_value(self, node: Node, row: dict[str, Any]) -> Any:
        if isinstance(node, RowField):
            return self.field(node, row)
        if isinstance(node, DateCompare):
            return v.compare(node.op, _moment(row.get(node.field.column)), node.moment)
        return self.operator(node, lambda child: self.row_value(child, row))

    @staticmethod
    def field(node: RowField, row: dict[str, Any]) -> Any:
        if node.prop is None:
            return row.get(node.column)
        properties = row.get(node.column)
        return properties.get(node.prop) if isinstance(properties, dict) else None

    def aggregate(self, agg: Agg) -> Any:
        rows = self.rows(agg)
        fn, target = agg.fn, agg.field
        if target is None:
            return len(rows)
        values = [x for x in (self.field(target, row) for row in rows) if x is not None]
        if fn == "count":
            return len(values)
        if fn in SMOOTHING:
            return self.smoothed(agg, rows, target)
        if fn in ("sum", "avg"):
            scaled = [s for s in (_exact(x) for x in values) if s is not None]
            if fn == "sum":
                return float(Fraction(sum(scaled), SCALE))
            return float(Fraction(sum(scaled), SCALE * len(scaled))) if scaled else None
        if fn in ("min", "max"):
            numbers = [n for n in (v.number(x) for x in values) if n is not None]
            return (min(numbers) if fn == "min" else max(numbers)) if numbers else None
        time = TIME_COLUMN[agg.source]
        if fn in ("first", "last"):
            present = [row for row in rows if self.field(target, row) is not None]
            if not present:
                return None
            pick = (min if fn == "first" else max)(present, key=lambda row: _order(row, time))
            return v.plain(self.field(target, pick))
        plain = [v.plain(x) for x in values]
        if fn == "distinct":
            return sorted(set(plain))
        if not plain:  # most_frequent
            return None
        counts = Counter(plain)
        top = max(counts.values())
        return min(x for x, n in counts.items() if n == top)

    def smoothed(self, agg: Agg, rows: list[dict[str, Any]], target: RowField) -> float | None:
        """moving_avg(): the exact mean of the latest ``n`` numeric values; ewma(): :func:`ewma` of them all.

        Latest by time (rows without a time are the oldest; ties by stream, then key), as last() picks.
        """
        time = TIME_COLUMN[agg.source]
        latest = [self.field(target, row) for row in sorted(rows, key=lambda row: _order(row, time), reverse=True)]
        assert agg.param is not None
        if agg.fn == "moving_avg":
            scaled = [s for s in (_exact(x) for x in latest) if s is not None][: int(agg.param)]
            return float(Fraction(sum(scaled), SCALE * len(scaled))) if scaled else None
        return ewma([n for n in (v.number(x) for x in latest) if n is not None], agg.param)

    # -- why ------------------------------------------------------------------------------

    def explain(self, node: Node) -> Explanation:
        value = self.value(node)
        children: list[Explanation] = []
        match node:
            case BoolOp(items=items):
                children = [self.explain(item) for item in items]
            case Not(item=item):
                children = [self.explain(item)]
            case InSegment(name=name):
                children = [self.explain(self.rules.segments[name].node)]
            case Compare(left=a, right=b) | Arith(left=a, right=b) | In(item=a, container=b):
                children = [self.explain(x) for x in (a, b) if not isinstance(x, (Lit, ListLit))]
            case Func(args=args):
                children = [self.explain(x) for x in args if not isinstance(x, (Lit, ListLit))]
            case Computed(name=name):
                children = [self.explain(self.rules.computed[name].node)]
        return Explanation(node.text, v.plain(value), v.truthy(value), children)
