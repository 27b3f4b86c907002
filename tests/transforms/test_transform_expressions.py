"""The safe expression language: values, null handling, coercion, and refusal of anything else."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cdp_core.records import Record
from cdp_core.transforms import expressions
from cdp_core.transforms.expressions import EvaluationError, ExpressionError, compile_expression

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def evaluate(source: str, **data: object) -> object:
    record = Record(stream="s", key="1", data=dict(data), identifiers={"email": "a@b.de"})
    return compile_expression(source, now=lambda: NOW)(record)


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        ("1 + 2 * 3", {}, 7),
        ("(1 + 2) * 3", {}, 9),
        ("7 / 2", {}, 3.5),
        ("7 % 4 - -1", {}, 4),
        ("'single' == \"single\"", {}, True),
        ("'a\\'b'", {}, "a'b"),
        ("true and not false", {}, True),
        ("null == null", {}, True),
        ("x", {"x": 5}, 5),
        ("a.b.c", {"a": {"b": {"c": "deep"}}}, "deep"),
        ("`first name`", {"first name": "Ann"}, "Ann"),
        ("identifiers.email", {}, "a@b.de"),
        ("missing", {}, None),
        ("concat(first_name, ' ', last_name)", {"first_name": "Zoë", "last_name": "Doe"}, "Zoë Doe"),
        ("concat(first_name, ' ', last_name)", {"first_name": "Zoë"}, "Zoë "),
        ("total_spent > 1000 and orders >= 3", {"total_spent": 1500.5, "orders": 3}, True),
        ("total_spent > 1000 and orders >= 3", {"total_spent": "1500.50", "orders": "3"}, True),  # CSV text
        ("total_spent > 1000 and orders >= 3", {"total_spent": 900, "orders": 5}, False),
        ("country in ['DE', 'AT']", {"country": "AT"}, True),
        ("country not in ['DE', 'AT']", {"country": "AT"}, False),
        ("'vip' in tags", {"tags": ["new", "vip"]}, True),
        ("2 in [1, '2', 3]", {}, True),
        ("'ell' in name", {"name": "Hello"}, True),
        ("lower(' MiXed ')", {}, " mixed "),
        ("upper(trim(' x '))", {}, "X"),
        ("len(name)", {"name": "Zoë"}, 3),
        ("len(tags)", {"tags": [1, 2]}, 2),
        ("coalesce(nick, '', first_name, 'anon')", {"first_name": "Ann"}, "Ann"),
        ("round(10 / 3, 2)", {}, 3.33),
        ("round(2.5)", {}, 2),
        ("abs(-4)", {}, 4),
        ("int('42') + int(3.9)", {}, 45),
        ("float('1.5') * 2", {}, 3.0),
        ("str(42)", {}, "42"),
        ("contains(email, '@')", {"email": "a@b.de"}, True),
        ("startswith(phone, '+49')", {"phone": "+4917"}, True),
        ("endswith(email, '.de')", {"email": "a@b.com"}, False),
        ("days_since(signup)", {"signup": "2024-12-22"}, 10),
        ("days_since(signup) > 7", {"signup": "2024-12-31T23:00:00Z"}, False),
        ("year(birthday)", {"birthday": "17.05.1990"}, 1990),
        ("now() > signup", {"signup": "2024-12-31T00:00:00Z"}, True),
        ("active", {"active": "false"}, "false"),
        ("active == true", {"active": "yes"}, True),
        ("not active", {"active": "false"}, True),
        ("'a' + 'b'", {}, "ab"),
        ("price + shipping", {"price": "10", "shipping": "4.5"}, 14.5),
    ],
)
def test_values(source: str, data: dict[str, object], expected: object) -> None:
    assert evaluate(source, **data) == expected


@pytest.mark.parametrize(
    "source",
    ["missing < 3", "missing > 3", "missing >= missing", "not (missing == 1)", "missing in ['a']"],
)
def test_null_is_safe_and_orders_as_false(source: str) -> None:
    expected = source.startswith("not")
    assert evaluate(source) is expected


def test_null_propagates_through_arithmetic_and_functions() -> None:
    assert evaluate("missing + 1") is None
    assert evaluate("lower(missing)") is None
    assert evaluate("days_since(missing)") is None
    assert evaluate("len(missing) > 0") is False


@pytest.mark.parametrize(
    ("source", "data", "message"),
    [
        ("total > 1000", {"total": "lots"}, "cannot compare 'lots' > 1000"),
        ("1 / n", {"n": 0}, "division by zero"),
        ("'ab' * 1000000000", {}, "expected a number, got 'ab'"),
        ("x - 1", {"x": [1]}, "expected a number, got [1]"),
        ("int(code)", {"code": "A7"}, "expected an integer, got 'A7'"),
        ("days_since(d)", {"d": "not a date"}, "expected a date, got 'not a date'"),
        ("1 in n", {"n": 5}, "'in' needs a list or text on its right, got 5"),
    ],
)
def test_evaluation_errors_say_what_is_wrong(source: str, data: dict[str, object], message: str) -> None:
    with pytest.raises(EvaluationError, match="^" + message.replace("(", r"\(").replace("[", r"\[")):
        evaluate(source, **data)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("__import__('os').system('id')", "syntax error"),
        ("a.__class__", "names starting with '__' are not allowed"),
        ("a.__class__.__subclasses__()", "syntax error"),
        ("`__globals__`", "invalid field name"),
        ("lambda: 1", "syntax error at column 7"),
        ("(lambda x: x)(1)", "syntax error"),
        ("eval('1')", "unknown function 'eval'"),
        ("exec('import os')", "unknown function 'exec'"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("getattr(a, 'b')", "unknown function 'getattr'"),
        ("name.upper()", "syntax error at column 11: unexpected '('"),
        ("'abc'.__len__()", "syntax error at column 6"),
        ("[x for x in items]", "syntax error"),
        ("a[0]", "syntax error at column 2"),
        ("x = 1", "syntax error at column 3: unexpected '='"),
        ("x; y", "syntax error at column 2: unexpected character ';'"),
        ("1 +", "syntax error at the end"),
        ("concat(a, b", "syntax error at the end"),
        ("len()", "len() takes 1 argument(s), got 0"),
        ("round(1, 2, 3)", "round() takes 1 to 2 argument(s), got 3"),
        ("", "the expression is empty"),
    ],
)
def test_anything_but_the_language_is_refused(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source)
    assert message in str(info.value)


def test_expressions_never_use_python_eval() -> None:
    # The guarantee is structural: the language's modules never call Python's own evaluators.
    builtin_call = re.compile(r"(?<![\w.])(eval|exec|compile|__import__)\(|import ast|from ast ")
    for module in ("expressions.py", "expr_functions.py"):
        text = (Path(expressions.__file__).parent / module).read_text()
        assert builtin_call.search(text) is None, module


def test_compiled_once_and_lists_referenced_fields() -> None:
    expression = compile_expression("concat(first_name, ' ', identifiers.email) != '' and a.b > 1")
    assert expression.fields == ("first_name", "identifiers.email", "a.b")
    record = Record(stream="s", key="1", data={"first_name": "A", "a": {"b": 2}})
    assert [expression(record) for _ in range(3)] == [True, True, True]


def test_keywords_are_not_names_but_prefixes_are() -> None:
    assert evaluate("order or android", order=0, android=1) is True
    assert evaluate("notes", notes="x") == "x"
    assert evaluate("index in [1]", index=1) is True


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("lower(name, where = 1)", "at column 13: lower() takes no keyword arguments (got 'where')"),
        ("[a = 1]", "at column 2: keyword arguments (a = ...) are for function calls"),
        ("x = 1", "syntax error at column 3: unexpected '='; expected an operator, ')' or the end (compare with '==')"),
    ],
)
def test_keyword_arguments_parse_but_the_kernel_functions_take_none(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    assert str(caught.value) == message


def test_the_parse_tree_is_public_with_positions_and_keyword_arguments() -> None:
    source = "count(orders, where = status != 'x', days = 90) >= 2"
    tree = expressions.parse_expression(source)
    assert tree.data == "compare"
    call = tree.children[0]
    assert call.data == "call" and call.meta.start_pos == 0 and source[call.meta.start_pos : call.meta.end_pos].endswith("90)")
    name, positional, keywords = expressions.call_arguments(call)
    assert str(name) == "count"
    assert [expressions.field_name(p) for p in positional] == ["orders"]
    assert sorted(keywords) == ["days", "where"]
    assert expressions.literal_value(keywords["days"][1]) == (True, 90)
    assert expressions.literal_value(expressions.parse_expression("-2.5")) == (True, -2.5)
    assert expressions.literal_value(keywords["where"][1]) == (False, None)
    assert expressions.field_name(expressions.parse_expression("`odd name`")) == "odd name"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("f(a = 1, 2)", "at column 10: a positional argument after a keyword argument"),
        ("f(a = 1, a = 2)", "at column 10: f() got 'a' twice"),
    ],
)
def test_call_arguments_refuses_what_python_refuses(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        expressions.call_arguments(expressions.parse_expression(source))
    assert str(caught.value) == message
