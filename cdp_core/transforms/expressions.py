"""A small, safe expression language for ``filter`` and ``derive`` (and products' rules).

Expressions come from connectors.toml, so they are data, never code: they are
parsed with an explicit lark grammar (no ``eval``, ``exec``, ``compile`` or
Python ``ast``), may only read record fields and call the whitelisted functions
of :mod:`cdp_core.transforms.expr_functions`, and are compiled once into a tree of
closures so evaluation per record is a handful of plain function calls.
docs/transforms.md documents the language.

:func:`parse_expression` gives the parse tree itself, for a product that compiles the
same language to something else (SQL): a lark ``Tree`` whose nodes are the grammar's
rule names below (``or_expr``, ``and_expr``, ``not_op``, ``compare``, ``in_op``,
``not_in_op``, ``sum``, ``product``, ``neg``, ``number``, ``string``, ``true``,
``false``, ``null``, ``call``, ``field``, ``quoted_field``, ``list``), each with its
source position (``meta.start_pos``, ``meta.end_pos``, ``meta.column``); a call's
arguments are ``args`` whose children are expressions or ``kwarg`` (``NAME = expr``).
:func:`call_arguments`, :func:`literal_value` and :func:`field_name` read them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from cdp_core.records import Record
from cdp_core.timeutil import utc_now
from cdp_core.transforms import expr_functions as fx
from cdp_core.transforms.expr_functions import EvaluationError
from cdp_core.transforms.fields import MISSING, FieldPath

__all__ = [
    "EvaluationError",
    "Expression",
    "ExpressionError",
    "call_arguments",
    "check_expression",
    "compile_expression",
    "field_name",
    "literal_value",
    "parse_expression",
]

GRAMMAR = r"""
?start: or_expr

?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr             -> not_op
         | comparison
?comparison: sum
           | sum COMP_OP sum         -> compare
           | sum _IN sum             -> in_op
           | sum _NOT _IN sum        -> not_in_op
?sum: product (ADD_OP product)*
?product: unary (MUL_OP unary)*
?unary: "-" unary                    -> neg
      | atom
?atom: NUMBER                        -> number
     | STRING                        -> string
     | _TRUE                         -> true
     | _FALSE                        -> false
     | _NULL                         -> null
     | NAME "(" [args] ")"           -> call
     | NAME ("." NAME)*              -> field
     | QUOTED_FIELD                  -> quoted_field
     | "[" [args] "]"                -> list
     | "(" or_expr ")"
args: arg ("," arg)*
?arg: or_expr
    | NAME "=" or_expr               -> kwarg

_OR: "or"
_AND: "and"
_NOT: "not"
_IN: "in"
_TRUE: "true"
_FALSE: "false"
_NULL: "null"
COMP_OP: "==" | "!=" | "<=" | ">=" | "<" | ">"
ADD_OP: "+" | "-"
MUL_OP: "*" | "/" | "%"
NAME: /[A-Za-z_][A-Za-z0-9_]*/
QUOTED_FIELD: /`[^`]+`/
NUMBER: /[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/
STRING: /'(?:[^'\\]|\\.)*'/ | /"(?:[^"\\]|\\.)*"/
%ignore /[ \t\r\n]+/
"""

_PARSER = Lark(GRAMMAR, parser="lalr", maybe_placeholders=True, propagate_positions=True)


class ExpressionError(ValueError):
    """The expression cannot be compiled: a syntax error (with its column) or an unknown name."""


Evaluator = Callable[[Record], Any]


class Expression:
    """A compiled expression: call it with a record to evaluate it."""

    __slots__ = ("_fn", "fields", "source")

    def __init__(self, source: str, fn: Evaluator, fields: tuple[str, ...]) -> None:
        self.source = source
        self.fields = fields
        self._fn = fn

    def __call__(self, record: Record) -> Any:
        """The value; raises :class:`EvaluationError` when the data cannot be evaluated."""
        try:
            return self._fn(record)
        except EvaluationError:
            raise
        except (TypeError, ValueError, ArithmeticError) as exc:  # e.g. round() of a huge number
            raise EvaluationError(f"{type(exc).__name__}: {exc}") from None

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def parse_expression(source: str) -> Tree[Token]:
    """The parse tree of ``source`` (see the module docstring); raises :class:`ExpressionError` with the column."""
    return _parse(source)


def call_arguments(node: Tree[Token]) -> tuple[Token, list[Tree[Token]], dict[str, tuple[Token, Tree[Token]]]]:
    """A ``call`` node's name token, positional arguments and keyword arguments (name -> (name token, value)).

    Raises :class:`ExpressionError` for a positional argument after a keyword one and for a repeated keyword.
    """
    token = node.children[0]
    assert isinstance(token, Token), f"a function's NAME is a token: {token!r}"
    positional: list[Tree[Token]] = []
    keywords: dict[str, tuple[Token, Tree[Token]]] = {}
    args = node.children[1]
    for child in args.children if isinstance(args, Tree) else ():
        assert isinstance(child, Tree), f"an argument is a rule: {child!r}"
        if child.data == "kwarg":
            key, value = child.children
            assert isinstance(key, Token) and isinstance(value, Tree)
            if str(key) in keywords:
                raise ExpressionError(f"at column {key.column}: {token!s}() got {str(key)!r} twice")
            keywords[str(key)] = (key, value)
        elif keywords:
            raise ExpressionError(f"at column {_column(child)}: a positional argument after a keyword argument")
        else:
            positional.append(child)
    return token, positional, keywords


def literal_value(node: Tree[Token]) -> tuple[bool, Any]:
    """(True, value) when ``node`` is a literal (number, text, true, false, null; ``-`` before a number), else (False, None)."""
    if node.data == "number":
        text = str(node.children[0])
        return True, float(text) if any(c in text for c in ".eE") else int(text)
    if node.data == "string":
        return True, _unquote(str(node.children[0]))
    if node.data in _CONSTANTS:
        return True, _CONSTANTS[node.data]
    if node.data == "neg" and isinstance(node.children[0], Tree) and node.children[0].data == "number":
        return True, -literal_value(node.children[0])[1]
    return False, None


def field_name(node: Tree[Token]) -> str | None:
    """The name a ``field`` (``a.b``) or ``quoted_field`` (`` `a b` ``) node reads, else None."""
    if node.data == "field":
        return ".".join(str(t) for t in node.children)
    if node.data == "quoted_field":
        return str(node.children[0])[1:-1]
    return None


_CONSTANTS: dict[str, Any] = {"true": True, "false": False, "null": None}


def _column(node: Tree[Token] | Token) -> int | str:
    if isinstance(node, Token):
        return node.column if isinstance(node.column, int) else "?"
    meta = node.meta
    return meta.column if not meta.empty else "?"


@lru_cache(maxsize=1024)
def _parse(source: str) -> Tree[Token]:
    if not source.strip():
        raise ExpressionError("the expression is empty")
    try:
        return _PARSER.parse(source)
    except UnexpectedInput as exc:
        raise ExpressionError(_syntax_message(exc)) from None


def _syntax_message(exc: UnexpectedInput) -> str:
    column = getattr(exc, "column", None)
    where = f"at column {column}" if isinstance(column, int) and column > 0 else "at the end"
    if isinstance(exc, UnexpectedCharacters):
        return f"syntax error {where}: unexpected character {exc.char!r}"
    if isinstance(exc, UnexpectedEOF):
        return "syntax error: the expression ends too early"
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            where, found = "at the end", "the end of the expression"
        else:
            found = repr(str(exc.token))
        # LALR's expected set spans every context of the parser state, so name the class only
        hint = "a value" if {"NAME", "NUMBER"} & set(exc.expected) else "an operator, ')' or the end"
        if str(exc.token) == "=":
            hint += " (compare with '==')"
        return f"syntax error {where}: unexpected {found}; expected {hint}"
    return f"syntax error {where}"


def check_expression(source: str) -> str:
    """Validate an expression from the config (for pydantic validators); returns it unchanged."""
    compile_expression(source)
    return source


def compile_expression(source: str, now: Callable[[], datetime] | None = None) -> Expression:
    """Parse and compile ``source``; ``now`` is the clock of ``now()`` and ``days_since`` (tests pin it)."""
    compiler = _Compiler(source, now or utc_now)
    fn = compiler.build(_parse(source))
    return Expression(source, fn, tuple(dict.fromkeys(compiler.fields)))


_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


def _unquote(token: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), token[1:-1])


class _Compiler:
    def __init__(self, source: str, now: Callable[[], datetime]) -> None:
        self.source = source
        self.now = now
        self.fields: list[str] = []

    def build(self, node: Tree[Token] | Token) -> Evaluator:
        if isinstance(node, Token):  # only bare tokens are inlined rules of one token
            raise ExpressionError(f"unexpected {node!s}")
        method = getattr(self, f"_{node.data}", None)
        if method is None:
            raise ExpressionError(f"unsupported construct {node.data!r}")
        result: Evaluator = method(node)
        return result

    # -- literals and names --------------------------------------------------------------

    def _constant(self, value: Any) -> Evaluator:
        return lambda record: value

    def _number(self, node: Tree[Token]) -> Evaluator:
        text = str(node.children[0])
        return self._constant(float(text) if any(c in text for c in ".eE") else int(text))

    def _string(self, node: Tree[Token]) -> Evaluator:
        return self._constant(_unquote(str(node.children[0])))

    def _true(self, node: Tree[Token]) -> Evaluator:
        return self._constant(True)

    def _false(self, node: Tree[Token]) -> Evaluator:
        return self._constant(False)

    def _null(self, node: Tree[Token]) -> Evaluator:
        return self._constant(None)

    def _field(self, node: Tree[Token]) -> Evaluator:
        parts = [str(t) for t in node.children]
        for token in node.children:
            if str(token).startswith("__"):
                column = getattr(token, "column", "?")
                raise ExpressionError(f"at column {column}: names starting with '__' are not allowed ({token!s})")
        return self._reference(".".join(parts))

    def _quoted_field(self, node: Tree[Token]) -> Evaluator:
        name = str(node.children[0])[1:-1]
        if not name.strip() or "__" in name:
            raise ExpressionError(f"invalid field name {name!r}")
        return self._reference(name)

    def _reference(self, name: str) -> Evaluator:
        try:
            path = FieldPath(name)
        except ValueError as exc:
            raise ExpressionError(str(exc)) from None
        self.fields.append(name)
        if path.in_identifiers:
            key = path.key
            return lambda record: record.identifiers.get(key)
        if path.parts is None:
            return lambda record: record.data.get(name)

        def lookup(record: Record) -> Any:
            value = path.get(record)
            return None if value is MISSING else value

        return lookup

    def _list(self, node: Tree[Token]) -> Evaluator:
        items = self._args(node.children[0])
        return lambda record: [item(record) for item in items]

    def _args(self, node: Tree[Token] | Token | None) -> list[Evaluator]:
        # lark types a child as Token | Tree, but an omitted optional [args] is None (maybe_placeholders)
        if node is None:
            return []
        assert isinstance(node, Tree), f"args is a rule, not a token: {node!r}"
        for child in node.children:
            if isinstance(child, Tree) and child.data == "kwarg":
                raise ExpressionError(f"at column {_column(child)}: keyword arguments ({child.children[0]!s} = ...) are for function calls")
        return [self.build(child) for child in node.children]

    def _call(self, node: Tree[Token]) -> Evaluator:
        token = node.children[0]
        assert isinstance(token, Token), f"a function's NAME is a token: {token!r}"
        name = str(token)
        spec = fx.FUNCTIONS.get(name)
        if spec is None:
            known = ", ".join(sorted(fx.FUNCTIONS))
            raise ExpressionError(f"at column {token.column}: unknown function {name!r}; functions: {known}")
        _, _, keywords = call_arguments(node)
        if keywords:
            key, _ = next(iter(keywords.values()))
            raise ExpressionError(f"at column {key.column}: {name}() takes no keyword arguments (got {str(key)!r})")
        args = self._args(node.children[1])
        low, high = spec.arity
        if len(args) < low or (high is not None and len(args) > high):
            wanted = f"{low}" if low == high else f"{low} to {high}" if high is not None else f"at least {low}"
            raise ExpressionError(f"at column {token.column}: {name}() takes {wanted} argument(s), got {len(args)}")
        impl = spec.impl
        if spec.clock:
            now = self.now
            return lambda record: impl(now(), *[a(record) for a in args])
        if len(args) == 1:
            (only,) = args
            return lambda record: impl(only(record))
        return lambda record: impl(*[a(record) for a in args])

    # -- operators -----------------------------------------------------------------------

    def _or_expr(self, node: Tree[Token]) -> Evaluator:
        operands = [self.build(child) for child in node.children]
        truthy = fx.truthy
        if len(operands) == 2:  # the common case, without a generator per record
            a, b = operands
            return lambda record: truthy(a(record)) or truthy(b(record))
        return lambda record: any(truthy(op(record)) for op in operands)

    def _and_expr(self, node: Tree[Token]) -> Evaluator:
        operands = [self.build(child) for child in node.children]
        truthy = fx.truthy
        if len(operands) == 2:
            a, b = operands
            return lambda record: truthy(a(record)) and truthy(b(record))
        return lambda record: all(truthy(op(record)) for op in operands)

    def _not_op(self, node: Tree[Token]) -> Evaluator:
        operand = self.build(node.children[0])
        truthy = fx.truthy
        return lambda record: not truthy(operand(record))

    def _neg(self, node: Tree[Token]) -> Evaluator:
        operand = self.build(node.children[0])
        return lambda record: fx.arith("-", 0, operand(record))

    def _compare(self, node: Tree[Token]) -> Evaluator:
        left, op, right = node.children
        lhs, rhs, compare = self.build(left), self.build(right), fx.COMPARISONS[str(op)]
        return lambda record: compare(lhs(record), rhs(record))

    def _in_op(self, node: Tree[Token]) -> Evaluator:
        lhs, rhs = (self.build(child) for child in node.children)
        return lambda record: fx.contained(lhs(record), rhs(record))

    def _not_in_op(self, node: Tree[Token]) -> Evaluator:
        lhs, rhs = (self.build(child) for child in node.children)
        return lambda record: not fx.contained(lhs(record), rhs(record))

    def _chain(self, node: Tree[Token]) -> Evaluator:
        first = self.build(node.children[0])
        steps = [(str(node.children[i]), self.build(node.children[i + 1])) for i in range(1, len(node.children), 2)]
        arith = fx.arith

        def evaluate(record: Record) -> Any:
            value = first(record)
            for op, operand in steps:
                value = arith(op, value, operand(record))
            return value

        return evaluate

    _sum = _chain
    _product = _chain
