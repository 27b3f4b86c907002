"""Values of the rule language in SQL: what cdp_profiles/segments/values.py defines, as expressions.

A value is a :class:`SqlValue`: the kinds it can have (known when the rule is compiled),
the expression giving its kind at run time when there is more than one, and one
expression per kind (its number, text, flag or JSON). Comparisons, truth and
arithmetic are built kind pair by kind pair, only for the pairs that can occur, so a
rule over typed columns stays plain SQL and a trait (whose kind is known only per
person) gets a ``CASE``. Every condition is NOT NULL (``COALESCE(..., false)``), so
``not`` means what it says. Text orders by code point on both databases (``COLLATE "C"``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Float, Integer, Text, and_, case, false, func, literal, not_, or_, true
from sqlalchemy.sql.elements import ColumnElement

from cdp_profiles.segments.language import ANY, Kind
from cdp_profiles.segments.values import FALSE_WORDS, TRUE_WORDS
from cdp_profiles.store.trait_docs import sqlite_json_path, value_json

Expr = ColumnElement[Any]
Cond = ColumnElement[bool]
UPPER, LOWER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class SqlValue:
    kinds: frozenset[Kind]
    kind: Expr | None = None
    """The kind at run time ('null', 'number', 'text', 'bool', 'list', 'object'); None when ``kinds`` has one."""
    num: Expr | None = None
    text: Expr | None = None
    flag: Expr | None = None
    json: Expr | None = None
    """The value's JSON text: for lists and objects, and for values read from a JSON document."""
    integer: bool = False
    document: bool = False
    """Read from a JSON document: ``json`` is its own text, whatever its kind."""
    base: Expr | None = None
    """For a value that is NULL or of one kind: the expression whose NULL says which."""

    def is_(self, kind: Kind) -> Cond:
        if kind not in self.kinds:
            return false()
        if len(self.kinds) == 1:
            return true()
        if self.base is not None:
            return self.base.is_(None) if kind == "null" else self.base.is_not(None)
        assert self.kind is not None
        return self.kind == kind


def const(value: Any) -> SqlValue:
    if value is None:
        return SqlValue(frozenset({"null"}))
    if isinstance(value, bool):
        return SqlValue(frozenset({"bool"}), flag=true() if value else false())
    if isinstance(value, int):
        return SqlValue(frozenset({"number"}), num=literal(value, Integer), integer=True)
    if isinstance(value, float):
        return SqlValue(frozenset({"number"}), num=literal(value, Float))
    assert isinstance(value, str), value
    return SqlValue(frozenset({"text"}), text=literal(value, Text))


def nullable(expr: Expr, kind: Kind, dialect: str, integer: bool = False) -> SqlValue:
    """A column or expression that is NULL or of one kind."""
    runtime = case((expr.is_(None), "null"), else_=kind)
    kinds: frozenset[Kind] = frozenset({"null", kind})
    if kind == "number":
        return SqlValue(kinds, runtime, num=expr if integer else as_float(expr, dialect), integer=integer, base=expr)
    if kind == "text":
        return SqlValue(kinds, runtime, text=expr, base=expr)
    if kind == "bool":
        return SqlValue(kinds, runtime, flag=expr, base=expr)
    return SqlValue(kinds, runtime, json=expr, base=expr)


def as_float(expr: Expr, dialect: str) -> Expr:
    return sa.cast(expr, sa.Float if dialect != "postgresql" else sa.Double)


def json_field(doc: Expr, name: str, dialect: str) -> SqlValue:
    """Key ``name`` of the JSON object ``doc`` (a profile's traits, an event's properties)."""
    if dialect == "postgresql":
        key = sa.cast(literal(name), Text)
        kind_raw = func.json_typeof(doc.op("->")(key))
        kind = case(
            (kind_raw == "number", "number"), (kind_raw == "string", "text"), (kind_raw == "boolean", "bool"),
            (kind_raw == "array", "list"), (kind_raw == "object", "object"), else_="null",
        )  # fmt: skip
        raw = sa.type_coerce(doc.op("->>")(key), Text)
        return SqlValue(ANY, kind, num=case((kind == "number", as_float(raw, dialect))), text=raw, flag=raw == "true",
                        json=value_json(doc, name, dialect), document=True)  # fmt: skip
    json, path = sqlite_json_path(doc, name)
    kind_raw = func.json_type(json, path)
    extracted = func.json_extract(json, path)
    return replace(_sqlite_typed(kind_raw, extracted, value_json(doc, name, dialect)), document=True)


def _sqlite_typed(kind_raw: Expr, atom: Expr, json: Expr) -> SqlValue:
    kind = case(
        (kind_raw.in_(("integer", "real")), "number"), (kind_raw == "text", "text"),
        (kind_raw.in_(("true", "false")), "bool"), (kind_raw == "array", "list"), (kind_raw == "object", "object"),
        else_="null",
    )  # fmt: skip
    return SqlValue(ANY, kind, num=case((kind == "number", sa.cast(atom, sa.Float))), text=atom, flag=kind_raw == "true",
                    json=json)  # fmt: skip


def elements(container: SqlValue, dialect: str) -> tuple[Any, SqlValue]:
    """The elements of a list value: (a table-valued FROM, each element as a value)."""
    assert container.json is not None
    if dialect == "postgresql":
        each = func.json_array_elements(sa.cast(container.json, sa.JSON)).table_valued("value").alias("element")
        kind_raw = func.json_typeof(each.c.value)
        kind = case(
            (kind_raw == "number", "number"), (kind_raw == "string", "text"), (kind_raw == "boolean", "bool"),
            (kind_raw == "array", "list"), (kind_raw == "object", "object"), else_="null",
        )  # fmt: skip
        raw = sa.type_coerce(each.c.value.op("#>>")(sa.text("'{}'")), Text)
        value = SqlValue(ANY, kind, num=case((kind == "number", as_float(raw, dialect))), text=raw, flag=raw == "true",
                         json=sa.cast(each.c.value, Text))  # fmt: skip
        return each, value
    each = func.json_each(container.json).table_valued("type", "atom", "value").alias("element")
    return each, _sqlite_typed(each.c.type, each.c.atom, sa.cast(each.c.value, Text))


# -- reading values ----------------------------------------------------------------------------


def numeric_text(text: Expr, dialect: str) -> Cond:
    """``-?[0-9]+(\\.[0-9]+)?``: the text a number meets as a number."""
    if dialect == "postgresql":
        return text.op("~", is_comparison=True)(r"^-?[0-9]+(\.[0-9]+)?$")
    digits = case((func.substr(text, 1, 1) == "-", func.substr(text, 2)), else_=text)
    return and_(
        digits.op("GLOB", is_comparison=True)("[0-9]*"), digits.op("GLOB", is_comparison=True)("*[0-9]"),
        not_(digits.op("GLOB", is_comparison=True)("*[^0-9.]*")), not_(digits.op("GLOB", is_comparison=True)("*.*.*")),
    )  # fmt: skip


def number(value: SqlValue, dialect: str) -> Expr | None:
    """The numeric reading (a float): a number, or numeric text; NULL otherwise. None: never a number."""
    whens: list[tuple[Cond, Expr]] = []
    if "number" in value.kinds:
        assert value.num is not None
        whens.append((value.is_("number"), as_float(value.num, dialect)))
    if "text" in value.kinds:
        assert value.text is not None
        whens.append((and_(value.is_("text"), numeric_text(value.text, dialect)), as_float(value.text, dialect)))
    if not whens:
        return None
    if len(whens) == 1 and len(value.kinds) == 1 and "number" in value.kinds:
        return whens[0][1]
    return case(*whens)


def ascii_lower(text: Expr, dialect: str) -> Expr:
    return func.translate(text, UPPER, LOWER) if dialect == "postgresql" else func.lower(text)


def ascii_upper(text: Expr, dialect: str) -> Expr:
    return func.translate(text, LOWER, UPPER) if dialect == "postgresql" else func.upper(text)


def _word(text: Expr, dialect: str) -> Expr:
    return ascii_lower(func.trim(text), dialect)


def ordered(text: Expr, dialect: str) -> Expr:
    """Text that sorts by code point (PostgreSQL's database collation may not)."""
    return text.collate("C") if dialect == "postgresql" else text


def _nn(cond: Cond) -> Cond:
    return cond if isinstance(cond, (sa.sql.elements.True_, sa.sql.elements.False_)) else func.coalesce(cond, false())


def truth(value: SqlValue, dialect: str) -> Cond:
    """Truthiness, NOT NULL: values.truthy."""
    parts: list[Cond] = []
    if "bool" in value.kinds:
        assert value.flag is not None
        parts.append(and_(value.is_("bool"), value.flag))
    if "number" in value.kinds:
        assert value.num is not None
        parts.append(and_(value.is_("number"), value.num != 0))
    if "text" in value.kinds:
        assert value.text is not None
        parts.append(and_(value.is_("text"), _word(value.text, dialect).not_in(sorted(FALSE_WORDS))))
    if "list" in value.kinds:
        assert value.json is not None
        parts.append(and_(value.is_("list"), func.json_array_length(_json_arg(value.json, dialect)) > 0))
    if "object" in value.kinds:
        parts.append(value.is_("object"))
    return _nn(or_(false(), *parts))


def _json_arg(json: Expr, dialect: str) -> Expr:
    return sa.cast(json, sa.JSON) if dialect == "postgresql" else json


def flag_value(cond: Cond) -> SqlValue:
    return SqlValue(frozenset({"bool"}), flag=cond)


# -- comparing ---------------------------------------------------------------------------------


def _bool_of_word(text: Expr, dialect: str) -> Expr:
    word = _word(text, dialect)
    return case((word.in_(sorted(TRUE_WORDS)), 1), (word.in_(sorted(FALSE_WORDS)), 0))


def _pairs(a: SqlValue, b: SqlValue, dialect: str) -> Iterable[tuple[Cond, Expr, Expr]]:
    """(both of these kinds, a's side, b's side) for each pair of kinds that compare."""
    k = a.kinds, b.kinds
    if "number" in k[0] and "number" in k[1]:
        assert a.num is not None and b.num is not None
        yield and_(a.is_("number"), b.is_("number")), as_float(a.num, dialect), as_float(b.num, dialect)
    if "text" in k[0] and "text" in k[1]:
        assert a.text is not None and b.text is not None
        yield and_(a.is_("text"), b.is_("text")), ordered(a.text, dialect), ordered(b.text, dialect)
    for x, y, flip in ((a, b, False), (b, a, True)):
        if "number" in x.kinds and "text" in y.kinds:
            assert x.num is not None and y.text is not None
            both = and_(x.is_("number"), y.is_("text"), numeric_text(y.text, dialect))
            sides = as_float(x.num, dialect), as_float(y.text, dialect)
            yield (both, sides[1], sides[0]) if flip else (both, *sides)
        if "bool" in x.kinds and "text" in y.kinds:
            assert x.flag is not None and y.text is not None
            word = _bool_of_word(y.text, dialect)
            both = and_(x.is_("bool"), y.is_("text"), word.is_not(None))
            sides = case((x.flag, 1), else_=0), word
            yield (both, sides[1], sides[0]) if flip else (both, *sides)
    if "bool" in k[0] and "bool" in k[1]:
        assert a.flag is not None and b.flag is not None
        yield and_(a.is_("bool"), b.is_("bool")), case((a.flag, 1), else_=0), case((b.flag, 1), else_=0)


_OPS = {"==": "__eq__", "<": "__lt__", "<=": "__le__", ">": "__gt__", ">=": "__ge__"}


def compare(op: str, a: SqlValue, b: SqlValue, dialect: str) -> Cond:
    """values.compare, NOT NULL."""
    if op == "!=":
        return not_(compare("==", a, b, dialect))
    method = _OPS[op]
    parts: list[Cond] = [and_(both, getattr(x, method)(y)) for both, x, y in _pairs(a, b, dialect)]
    if op == "==" and "null" in a.kinds and "null" in b.kinds:
        parts.append(and_(a.is_("null"), b.is_("null")))
    return _nn(or_(false(), *parts))


def contained(item: SqlValue, container: SqlValue, dialect: str) -> Cond:
    """values.contained: ``item in container`` for a list (by equality) or text (substring)."""
    parts: list[Cond] = []
    if "list" in container.kinds:
        each, element = elements(container, dialect)
        found = sa.exists(sa.select(literal(1)).select_from(each).where(compare("==", item, element, dialect)))
        parts.append(and_(container.is_("list"), found))
    if "text" in container.kinds and "text" in item.kinds:
        assert container.text is not None and item.text is not None
        position = func.strpos(container.text, item.text) if dialect == "postgresql" else func.instr(container.text, item.text)
        parts.append(and_(container.is_("text"), item.is_("text"), position > 0))
    return _nn(or_(false(), *parts))


# -- computing -----------------------------------------------------------------------------------


def arith(op: str, a: SqlValue, b: SqlValue, dialect: str) -> SqlValue:
    """values.arith: floats; NULL for what is not a number and for a division by zero."""
    x, y = number(a, dialect), number(b, dialect)
    if x is None or y is None:
        return const(None)
    if op == "+":
        result = x + y
    elif op == "-":
        result = x - y
    elif op == "*":
        result = x * y
    else:
        result = case((y == 0, None), else_=x / y)
    return nullable(result, "number", dialect)


def choose(options: list[tuple[Cond, SqlValue]]) -> SqlValue:
    """The first value whose condition holds, else null (coalesce)."""
    kinds: frozenset[Kind] = frozenset({"null"})
    for _, option in options:
        kinds |= option.kinds

    def pick(attr: str, runtime: bool = False) -> Expr | None:
        whens = []
        for cond, value in options:
            if runtime:
                whens.append((cond, value.kind if value.kind is not None else literal(next(iter(value.kinds)), Text)))
            elif getattr(value, attr) is not None:
                whens.append((cond, getattr(value, attr)))
        if not whens:
            return None
        return case(*whens, else_=literal("null", Text) if runtime else None)

    return SqlValue(kinds, pick("", runtime=True), num=pick("num"), text=pick("text"), flag=pick("flag"),
                    json=pick("json"), integer=all(v.integer for _, v in options))  # fmt: skip


def present(value: SqlValue) -> Cond:
    """Neither null nor empty text (coalesce's test)."""
    parts = [value.is_(k) for k in value.kinds if k not in ("null", "text")]
    if "text" in value.kinds:
        assert value.text is not None
        parts.append(and_(value.is_("text"), value.text != ""))
    return or_(false(), *parts)


def to_json(value: SqlValue, dialect: str) -> Expr:
    """The value as JSON text (what :func:`cdp_profiles.segments.decode_value` reads)."""
    whens: list[tuple[Cond, Expr]] = []
    if value.document:  # read from a JSON document: its own text
        return func.coalesce(value.json, "null")
    for kind in sorted(value.kinds):
        text: Expr
        if kind == "number":
            assert value.num is not None
            if value.integer:
                text = sa.cast(value.num, Text)
            elif dialect == "postgresql":
                text = sa.cast(as_float(value.num, dialect), Text)
            else:
                text = func.printf("%!.17g", value.num)
        elif kind == "text":
            assert value.text is not None
            text = sa.cast(func.to_json(value.text), Text) if dialect == "postgresql" else func.json_quote(value.text)
        elif kind == "bool":
            assert value.flag is not None
            text = case((value.flag, "true"), else_="false")
        elif kind in ("list", "object"):
            assert value.json is not None
            text = value.json
        else:
            text = literal("null", Text)
        whens.append((value.is_(kind), text))
    if len(whens) == 1:
        return whens[0][1]
    return case(*whens, else_=literal("null", Text))


def with_kinds(value: SqlValue, kinds: frozenset[Kind]) -> SqlValue:
    return replace(value, kinds=kinds)
