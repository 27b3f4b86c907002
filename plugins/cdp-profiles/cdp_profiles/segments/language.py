"""The rule language read with a profile's names: the kernel's parse tree -> a small typed tree (docs/segments.md).

Rules are parsed by the kernel (:func:`cdp_core.transforms.expressions.parse_expression`),
then resolved here once, with every check (unknown names and functions, aggregates
out of place, bad windows, unknown purposes): both the SQL compiler and the in-memory
evaluator walk the resolved :data:`Node` tree, so they cannot disagree on what a name means.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
import dataclasses
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from cdp_core.keypaths import did_you_mean
from cdp_core.transforms.expressions import (
    ExpressionError,
    call_arguments,
    field_name,
    literal_value,
    parse_expression,
)
from lark import Token, Tree

from cdp_profiles.consent import Policy

Kind = Literal["null", "number", "text", "bool", "list", "object", "date"]
ANY: frozenset[Kind] = frozenset({"null", "number", "text", "bool", "list", "object"})

# -- what a person's rows hold ---------------------------------------------------------------

SOURCES: dict[str, dict[str, Kind]] = {
    "events": {"name": "text", "occurred_at": "date"},
    "orders": {"order_id": "text", "amount": "number", "currency": "text", "status": "text", "occurred_at": "date"},
    "nps": {"score": "number", "category": "text", "survey": "text", "channel": "text", "comment": "text",
            "answered_at": "date"},
}  # fmt: skip
TIME_COLUMN = {"events": "occurred_at", "orders": "occurred_at", "nps": "answered_at"}
PROPERTIES = {"events": "properties"}
"""Sources whose rows carry a JSON object of their own fields (``properties.plan``)."""

AGGREGATES = ("count", "sum", "avg", "min", "max", "first", "last", "most_frequent", "distinct", "moving_avg", "ewma")
SMOOTHING = {"moving_avg": "n", "ewma": "alpha"}
"""The smoothing aggregates over a person's latest rows, and the keyword each requires."""
NUMERIC_AGGREGATES = ("sum", "avg", "min", "max", *SMOOTHING)
WINDOW_KEYWORDS = ("where", "days", "since", "until")
MAX_MOVING_N = 1000
PERSON_FUNCTIONS = ("consent", "has_consent", "in_segment")
VALUE_FUNCTIONS = ("lower", "upper", "len", "coalesce")
ALL_FUNCTIONS = tuple(sorted(AGGREGATES + PERSON_FUNCTIONS + VALUE_FUNCTIONS))


# -- the resolved tree ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Lit:
    value: Any
    text: str


@dataclass(frozen=True)
class ListLit:
    items: tuple[Node, ...]
    text: str


@dataclass(frozen=True)
class Trait:
    name: str
    text: str


@dataclass(frozen=True)
class Ident:
    type: str
    text: str


@dataclass(frozen=True)
class ConsentStatus:
    purpose: str
    text: str


@dataclass(frozen=True)
class HasConsent:
    purpose: str
    policy: Policy
    text: str


@dataclass(frozen=True)
class InSegment:
    name: str
    text: str


@dataclass(frozen=True)
class Computed:
    name: str
    text: str


@dataclass(frozen=True)
class Stored:
    """A trait the analytics write into ``computed_traits`` (``rfm_group``, ``clv_p_alive``): read, not computed."""

    name: str
    kind: Kind
    text: str


@dataclass(frozen=True)
class RowField:
    """A column of the aggregated row (``amount``, ``name``), or ``properties.KEY`` when ``prop`` is set."""

    source: str
    column: str
    kind: Kind
    prop: str | None
    text: str


@dataclass(frozen=True)
class Window:
    days: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    """Exclusive: the day after the ``until`` date, at midnight UTC."""


@dataclass(frozen=True)
class Agg:
    fn: str
    source: str
    field: RowField | None
    where: Node | None
    window: Window
    text: str
    param: float | None = None
    """``n`` of moving_avg (a whole number), ``alpha`` of ewma."""


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node
    text: str


@dataclass(frozen=True)
class DateCompare:
    """A row's time column against a moment (``occurred_at >= '2024-06-01'``)."""

    op: str
    field: RowField
    moment: datetime
    text: str


@dataclass(frozen=True)
class BoolOp:
    op: Literal["and", "or"]
    items: tuple[Node, ...]
    text: str


@dataclass(frozen=True)
class Not:
    item: Node
    text: str


@dataclass(frozen=True)
class In:
    item: Node
    container: Node
    negated: bool
    text: str


@dataclass(frozen=True)
class Arith:
    op: str
    left: Node
    right: Node
    text: str


@dataclass(frozen=True)
class Func:
    name: str
    args: tuple[Node, ...]
    text: str


Node = (
    Lit | ListLit | Trait | Ident | ConsentStatus | HasConsent | InSegment | Computed | Stored | RowField | Agg | Compare
    | DateCompare | BoolOp | Not | In | Arith | Func
)  # fmt: skip


def kinds_of(node: Node, computed_kinds: Callable[[str], frozenset[Kind]]) -> frozenset[Kind]:
    """The kinds of value ``node`` can have (``computed_kinds`` gives a computed trait's)."""
    match node:
        case Lit(value=value):
            return frozenset({kind_of(value)})
        case ListLit():
            return frozenset({"list"})
        case Trait():
            return ANY
        case Ident() | ConsentStatus():
            return frozenset({"null", "text"})
        case HasConsent() | InSegment() | Compare() | DateCompare() | BoolOp() | Not() | In():
            return frozenset({"bool"})
        case Computed(name=name):
            return computed_kinds(name)
        case Stored(kind=kind):
            return frozenset({"null", kind})
        case RowField(kind=kind, prop=prop):
            return ANY if prop is not None else frozenset({"null", kind})
        case Agg(fn=fn, field=field):
            if fn == "count":
                return frozenset({"number"})
            if fn == "sum":
                return frozenset({"number"})
            if fn == "distinct":
                return frozenset({"list"})
            if fn in ("avg", "min", "max", *SMOOTHING):
                return frozenset({"null", "number"})
            assert field is not None
            return frozenset({"null", field.kind})
        case Arith():
            return frozenset({"null", "number"})
        case Func(name=name, args=args):
            if name in ("lower", "upper"):
                return frozenset({"null", "text"})
            if name == "len":
                return frozenset({"null", "number"})
            union: frozenset[Kind] = frozenset()
            for arg in args:
                union |= kinds_of(arg, computed_kinds)
            return union
    raise AssertionError(f"unknown node {node!r}")


def kind_of(value: Any) -> Kind:
    """The kind of a plain Python value (a trait, a literal, a row's field)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)) or type(value).__name__ == "Decimal":
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "list"
    if isinstance(value, datetime):
        return "date"
    return "object"


# -- resolving a parse tree ----------------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    """What a rule may name: computed traits, segments and consent purposes (with their policies)."""

    computed: Collection[str]
    segments: Collection[str]
    purposes: dict[str, Policy]
    traits: Collection[str] | None = None
    """Known profile traits: when given, other names are errors (with did-you-mean)."""
    stored: Mapping[str, Kind] = dataclasses.field(default_factory=dict)
    """Traits the analytics store (``[analytics.rfm]``, ``[analytics.clv]``): name -> kind."""


def parse_rule(source: str, names: Names) -> Node:
    """``source`` resolved against ``names``; raises :class:`ExpressionError` saying what and at which column."""
    return _Resolver(source, names).build(parse_expression(source), None)


def _text(source: str, node: Tree[Token]) -> str:
    meta = node.meta
    return source if meta.empty else source[meta.start_pos : meta.end_pos]


def _col(node: Tree[Token] | Token) -> str:
    if isinstance(node, Token):
        return f"at column {node.column}"
    return "" if node.meta.empty else f"at column {node.meta.column}"


class _Resolver:
    def __init__(self, source: str, names: Names) -> None:
        self.source = source
        self.names = names

    def error(self, node: Tree[Token] | Token, message: str) -> ExpressionError:
        where = _col(node)
        return ExpressionError(f"{where}: {message}" if where else message)

    # -- both scopes ----------------------------------------------------------------------

    def build(self, node: Tree[Token], row: str | None) -> Node:
        """``row``: the source whose rows are in scope (inside ``where = ...``), or None for the person."""
        text = _text(self.source, node)
        is_literal, value = literal_value(node)
        if is_literal:
            if isinstance(value, float) and value != value:  # pragma: no cover - the grammar has no NaN
                raise self.error(node, "not a number")
            return Lit(value, text)
        data = node.data
        if data in ("or_expr", "and_expr"):
            op: Literal["and", "or"] = "or" if data == "or_expr" else "and"
            return BoolOp(op, tuple(self.build(self.tree(c), row) for c in node.children), text)
        if data == "not_op":
            return Not(self.build(self.tree(node.children[0]), row), text)
        if data == "compare":
            left, op_token, right = node.children
            return self.compare(str(op_token), self.tree(left), self.tree(right), row, text)
        if data in ("in_op", "not_in_op"):
            item, container = (self.build(self.tree(c), row) for c in node.children)
            if not isinstance(container, ListLit) and isinstance(container, Lit):
                raise self.error(node, "'in' needs a list or a text value on its right")
            return In(item, container, data == "not_in_op", text)
        if data in ("sum", "product"):
            result = self.build(self.tree(node.children[0]), row)
            for i in range(1, len(node.children), 2):
                symbol = str(node.children[i])
                if symbol == "%":
                    raise self.error(node.children[i], "'%' is not available in segment rules")
                operand = self.build(self.tree(node.children[i + 1]), row)
                result = Arith(symbol, result, operand, text)
            return result
        if data == "neg":
            return Arith("-", Lit(0, "0"), self.build(self.tree(node.children[0]), row), text)
        if data == "list":
            args = node.children[0]
            items = tuple(self.build(self.tree(c), row) for c in args.children) if isinstance(args, Tree) else ()
            for item, child in zip(items, args.children if isinstance(args, Tree) else (), strict=True):
                if not isinstance(item, Lit) or kind_of(item.value) in ("list", "object"):
                    raise self.error(self.tree(child), "a list in a rule holds literal values only")
            return ListLit(items, text)
        if data in ("field", "quoted_field"):
            name = field_name(node)
            assert name is not None
            return self.row_name(node, name, row) if row else self.person_name(node, name)
        if data == "call":
            return self.call(node, row, text)
        if data == "kwarg":
            raise self.error(node, "keyword arguments are for function calls")
        raise self.error(node, f"unsupported construct {data!r}")

    @staticmethod
    def tree(child: Tree[Token] | Token) -> Tree[Token]:
        assert isinstance(child, Tree), f"an expression is a rule: {child!r}"
        return child

    def compare(self, op: str, left: Tree[Token], right: Tree[Token], row: str | None, text: str) -> Node:
        a, b = self.build(left, row), self.build(right, row)
        for this, other, node in ((a, b, right), (b, a, left)):
            if isinstance(this, RowField) and this.kind == "date":
                if not (isinstance(other, Lit) and isinstance(other.value, str)):
                    raise self.error(node, f"compare {this.column} with a date like '2024-06-01' (or use days = N)")
                moment = self.moment(node, other.value, end=False)
                flipped = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op) if this is b else op
                return DateCompare(flipped, this, moment, text)
        for side, node in ((a, left), (b, right)):
            if isinstance(side, ListLit):
                raise self.error(node, "a list can only be on the right of 'in'")
        return Compare(op, a, b, text)

    def moment(self, node: Tree[Token] | Token, value: str, end: bool) -> datetime:
        """A date (midnight UTC; with ``end`` the next midnight) or an ISO date-time."""
        try:
            if len(value) == 10:
                day = date.fromisoformat(value)
                moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
                return moment.fromordinal(day.toordinal() + 1).replace(tzinfo=UTC) if end else moment
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise self.error(node, f"not a date: {value!r} (write 'YYYY-MM-DD' or an ISO date-time)") from None
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    # -- names ------------------------------------------------------------------------------

    def person_name(self, node: Tree[Token], name: str) -> Node:
        text = _text(self.source, node)
        head, _, rest = name.partition(".")
        if node.data == "field" and head == "identifiers" and rest:
            return Ident(rest, text)
        if name in self.names.computed:
            return Computed(name, text)
        if name in self.names.stored:
            return Stored(name, self.names.stored[name], text)
        if node.data == "field" and head in SOURCES:
            example = f"count({head})" if not rest else f"sum({name})" if rest in ("amount", "score") else f"last({name})"
            raise self.error(node, f"{name!r} is a field of each of a person's {head}: use it in an aggregate like {example}")
        known = self.names.traits
        if known is not None and name not in known:
            options = sorted({*known, *self.names.computed, *self.names.stored})
            raise self.error(node, f"unknown trait {name!r}{did_you_mean(name, options)}")
        return Trait(name, text)

    def row_name(self, node: Tree[Token], name: str, source: str) -> Node:
        text = _text(self.source, node)
        head, _, rest = name.partition(".")
        if head == source and rest:  # qualified: orders.amount inside count(orders, where = ...)
            name = rest
            head, _, rest = name.partition(".")
        columns = SOURCES[source]
        if name in columns:
            return RowField(source, name, columns[name], None, text)
        properties = PROPERTIES.get(source)
        if properties and head == properties and rest:
            return RowField(source, properties, "object", rest, text)
        known = sorted(columns) + ([f"{properties}.KEY"] if properties else [])
        hint = did_you_mean(name, sorted(columns)) or (
            f" (a property? write {properties}.{name})" if properties and node.data == "field" else ""
        )
        raise self.error(node, f"{source} have no field {name!r}{hint}; fields: {', '.join(known)}")

    # -- calls ------------------------------------------------------------------------------

    def call(self, node: Tree[Token], row: str | None, text: str) -> Node:
        token, positional, keywords = call_arguments(node)
        name = str(token)
        if name in AGGREGATES:
            if row is not None:
                raise self.error(token, f"{name}() is an aggregate over a person's rows: not inside where = ...")
            return self.aggregate(token, positional, keywords, text)
        if name not in ALL_FUNCTIONS:
            raise self.error(token, f"unknown function {name!r}{did_you_mean(name, list(ALL_FUNCTIONS))}; "
                             f"functions: {', '.join(ALL_FUNCTIONS)}")  # fmt: skip
        if keywords:
            key = next(iter(keywords.values()))[0]
            raise self.error(key, f"{name}() takes no keyword arguments (got {str(key)!r})")
        if name in PERSON_FUNCTIONS:
            if row is not None:
                raise self.error(token, f"{name}() is about the person: not inside where = ...")
            return self.person_function(token, name, positional, text)
        if name in ("lower", "upper", "len") and len(positional) != 1:
            raise self.error(token, f"{name}() takes 1 argument, got {len(positional)}")
        if name == "coalesce" and not positional:
            raise self.error(token, "coalesce() takes at least 1 argument")
        return Func(name, tuple(self.build(arg, row) for arg in positional), text)

    def person_function(self, token: Token, name: str, positional: list[Tree[Token]], text: str) -> Node:
        if len(positional) != 1:
            raise self.error(token, f"{name}() takes 1 argument, got {len(positional)}")
        is_literal, value = literal_value(positional[0])
        if not is_literal or not isinstance(value, str):
            what = "segment" if name == "in_segment" else "purpose"
            raise self.error(positional[0], f"{name}() takes a {what} name in quotes, like {name}('{_EXAMPLE[name]}')")
        if name == "in_segment":
            if value not in self.names.segments:
                known = sorted(self.names.segments)
                listed = f"; segments: {', '.join(known)}" if known else "; no segment is configured"
                raise self.error(positional[0], f"unknown segment {value!r}{did_you_mean(value, known)}{listed}")
            return InSegment(value, text)
        purposes = self.names.purposes
        if value not in purposes:
            known = sorted(purposes)
            raise self.error(
                positional[0], f"unknown purpose {value!r}{did_you_mean(value, known)}; purposes: {', '.join(known)}"
            )
        return ConsentStatus(value, text) if name == "consent" else HasConsent(value, purposes[value], text)

    def aggregate(
        self, token: Token, positional: list[Tree[Token]], keywords: dict[str, tuple[Token, Tree[Token]]], text: str
    ) -> Agg:
        fn = str(token)
        if len(positional) != 1:
            raise self.error(token, f"{fn}() takes 1 positional argument (what to aggregate), got {len(positional)}")
        target = field_name(positional[0]) if positional[0].data == "field" else None
        source, _, rest = (target or "").partition(".")
        if source not in SOURCES:
            example = "orders" if fn == "count" else "orders.amount"
            raise self.error(
                positional[0], f"{fn}() aggregates events, orders or nps (like {fn}({example}))"
                + (did_you_mean(source, list(SOURCES)) if source else "")
            )  # fmt: skip
        field: RowField | None = None
        if rest:
            built = self.row_name(positional[0], rest, source)
            assert isinstance(built, RowField)
            field = built
        if field is None and fn != "count":
            raise self.error(positional[0], f"{fn}() needs a field: {fn}({source}.{_FIELD_EXAMPLE[source]})")
        if field is not None and field.kind == "date":
            raise self.error(positional[0], f"{fn}() of {field.column}: times are for windows (days = N, since, until) and where")
        if fn in NUMERIC_AGGREGATES and field is not None and field.kind == "text":
            raise self.error(positional[0], f"{fn}() needs a number field; {source}.{field.column} is text")
        if fn in ("first", "last", "most_frequent", "distinct") and field is not None and field.prop is not None:
            raise self.error(positional[0], f"{fn}() takes a column of {source} ({', '.join(SOURCES[source])}), not a property")
        allowed = (SMOOTHING[fn], *WINDOW_KEYWORDS) if fn in SMOOTHING else WINDOW_KEYWORDS
        for key, (key_token, _) in keywords.items():
            if key not in allowed:
                raise self.error(
                    key_token, f"{fn}() has no argument {key!r}{did_you_mean(key, list(allowed))}; "
                    f"it takes {', '.join(allowed)}"
                )  # fmt: skip
        param = self.smoothing(token, fn, source, keywords) if fn in SMOOTHING else None
        where = self.build(keywords["where"][1], source) if "where" in keywords else None
        return Agg(fn, source, field, where, self.window(fn, keywords), text, param)

    def smoothing(self, token: Token, fn: str, source: str, keywords: dict[str, tuple[Token, Tree[Token]]]) -> float:
        """``n`` of moving_avg (1..MAX_MOVING_N) or ``alpha`` of ewma (0 < alpha <= 1), required."""
        key = SMOOTHING[fn]
        example = f"{fn}({source}.{_FIELD_EXAMPLE[source]}, {key} = {3 if key == 'n' else 0.3})"
        if key not in keywords:
            raise self.error(token, f"{fn}() needs {key}: {example}")
        node = keywords[key][1]
        is_literal, value = literal_value(node)
        number = is_literal and not isinstance(value, bool) and isinstance(value, (int, float))
        if key == "n":
            if not number or not isinstance(value, int) or not 1 <= value <= MAX_MOVING_N:
                raise self.error(node, f"{fn}(): n is a whole number of rows from 1 to {MAX_MOVING_N} ({example})")
            return float(value)
        if not number or not 0 < value <= 1:
            raise self.error(node, f"{fn}(): alpha is a number above 0 and at most 1 ({example})")
        return float(value)

    def window(self, fn: str, keywords: dict[str, tuple[Token, Tree[Token]]]) -> Window:
        days: int | None = None
        bounds: dict[str, datetime] = {}
        if "days" in keywords:
            node = keywords["days"][1]
            is_literal, value = literal_value(node)
            if not is_literal or isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise self.error(node, f"{fn}(): days takes a whole number of days, 1 or more (days = 90)")
            days = value
        for key in ("since", "until"):
            if key in keywords:
                node = keywords[key][1]
                is_literal, value = literal_value(node)
                if not is_literal or not isinstance(value, str) or len(value) != 10:
                    raise self.error(node, f"{fn}(): {key} takes a date in quotes ({key} = '2024-06-01')")
                bounds[key] = self.moment(node, value, end=key == "until")
        return Window(days, bounds.get("since"), bounds.get("until"))


_EXAMPLE = {"in_segment": "promoters", "consent": "ads", "has_consent": "ads"}
_FIELD_EXAMPLE = {"events": "name", "orders": "amount", "nps": "score"}


def references(node: Node) -> tuple[set[str], set[str]]:
    """The computed traits and segments ``node`` names (directly)."""
    computed: set[str] = set()
    segments: set[str] = set()

    def walk(n: Node) -> None:
        match n:
            case Computed(name=name):
                computed.add(name)
            case InSegment(name=name):
                segments.add(name)
            case Agg(where=where):
                if where is not None:
                    walk(where)
            case Compare(left=a, right=b) | Arith(left=a, right=b):
                walk(a)
                walk(b)
            case In(item=a, container=b):
                walk(a)
                walk(b)
            case BoolOp(items=items) | Func(args=items) | ListLit(items=items):
                for item in items:
                    walk(item)
            case Not(item=item):
                walk(item)
            case _:
                pass

    walk(node)
    return computed, segments
