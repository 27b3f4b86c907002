"""Runtime semantics of the expression language: operators, null handling, functions.

Customer data arrives as text more often than not (every CSV cell is a string),
so operators read numeric text as numbers when the other side is a number, and
the words true/false/yes/no/1/0 as booleans. Null (a missing field) never raises:
it propagates through arithmetic and functions, and orders as "false".
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeGuard

from cdp_core.timeutil import aware
from cdp_core.transforms.fields import Invalid
from cdp_core.transforms.normalizers import as_datetime


class EvaluationError(Exception):
    """The data cannot be evaluated (text where a number is needed, division by zero...)."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_FALSE_WORDS = frozenset({"", "false", "no", "0", "off", "n", "f"})
_TRUE_WORDS = frozenset({"true", "yes", "1", "on", "y", "t"})


def truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_WORDS
    return bool(value)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text_number(text: str) -> int | float | None:
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        number = float(stripped)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def number(value: Any, what: str = "a number") -> int | float:
    """``value`` as a number; numeric text counts. Raises for anything else."""
    if _is_number(value):
        return value
    if isinstance(value, str):
        parsed = _text_number(value)
        if parsed is not None:
            return parsed
    raise EvaluationError(f"expected {what}, got {_show(value)}")


def _moment(value: Any) -> datetime:
    moment = as_datetime(value)
    if moment is None or isinstance(moment, Invalid):
        raise EvaluationError(f"expected a date, got {_show(value)}")
    return aware(moment)  # keep its offset: year() of 00:30+02:00 on New Year's Day is the new year


def _coerce_pair(a: Any, b: Any) -> tuple[Any, Any] | None:
    """Bring two non-null values to comparable types; None when they cannot be."""
    if _is_number(a) and _is_number(b):
        return a, b
    if type(a) is type(b) and isinstance(a, str):
        return a, b
    if _is_number(a) and isinstance(b, str):
        parsed = _text_number(b)
        return None if parsed is None else (a, parsed)
    if isinstance(a, str) and _is_number(b):
        parsed = _text_number(a)
        return None if parsed is None else (parsed, b)
    if isinstance(a, bool) or isinstance(b, bool):
        other = b if isinstance(a, bool) else a
        if isinstance(other, str):
            word = other.strip().lower()
            if word in _TRUE_WORDS or word in _FALSE_WORDS:
                flag = truthy(other)
                return (a, flag) if isinstance(a, bool) else (flag, b)
        return (a, b) if isinstance(a, bool) and isinstance(b, bool) else None
    if isinstance(a, (datetime, date)) or isinstance(b, (datetime, date)):
        try:
            return _moment(a), _moment(b)
        except EvaluationError:
            return None
    return (a, b) if type(a) is type(b) else None


def equals(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    pair = _coerce_pair(a, b)
    return pair is not None and pair[0] == pair[1]


def _ordering(op: Callable[[Any, Any], bool], symbol: str) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return False  # null-safe: a missing value is never smaller or greater
        pair = _coerce_pair(a, b)
        if pair is None:
            raise EvaluationError(f"cannot compare {_show(a)} {symbol} {_show(b)}")
        return bool(op(*pair))

    return compare


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": equals,
    "!=": lambda a, b: not equals(a, b),
    "<": _ordering(operator.lt, "<"),
    "<=": _ordering(operator.le, "<="),
    ">": _ordering(operator.gt, ">"),
    ">=": _ordering(operator.ge, ">="),
}

_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
}


def arith(op: str, a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if op == "+" and isinstance(a, str) and isinstance(b, str) and (_text_number(a) is None or _text_number(b) is None):
        return a + b  # text + text concatenates, unless both are numbers written as text (CSV)
    # numbers only: "ab" * 10**9 must not be able to exhaust memory
    x, y = number(a), number(b)
    if op in "/%" and y == 0:
        raise EvaluationError("division by zero")
    result = _ARITH[op](x, y)
    if isinstance(result, float) and not math.isfinite(result):
        raise EvaluationError(f"{_show(x)} {op} {_show(y)} is not a finite number")
    return result


def contained(item: Any, container: Any) -> bool:
    if container is None:
        return False
    if isinstance(container, list):
        return any(equals(item, element) for element in container)
    if isinstance(container, str):
        return item is not None and str(item) in container
    raise EvaluationError(f"'in' needs a list or text on its right, got {_show(container)}")


# -- functions -----------------------------------------------------------------------------


def _text_fn(fn: Callable[[str], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else fn(value if isinstance(value, str) else str(value))


def _round(value: Any, digits: Any = 0) -> Any:
    if value is None:
        return None
    places = int(number(digits, "a number of digits"))
    rounded = round(number(value), places)
    return int(rounded) if places <= 0 else rounded


def _int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    return int(number(value, "an integer"))


def _float(value: Any) -> float | None:
    return None if value is None else float(number(value))


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def _concat(*values: Any) -> str:
    return "".join(_str(v) or "" for v in values)


def _coalesce(*values: Any) -> Any:
    return next((v for v in values if v is not None and v != ""), None)


def _contains(haystack: Any, needle: Any) -> bool:
    if haystack is None or needle is None:
        return False
    return contained(needle, haystack if isinstance(haystack, list) else str(haystack))


def _affix(method: str) -> Callable[[Any, Any], bool]:
    def check(text: Any, part: Any) -> bool:
        if text is None or part is None:
            return False
        return bool(getattr(str, method)(_str(text), _str(part)))

    return check


def _days_since(now: datetime, value: Any) -> int | None:
    if value is None or value == "":
        return None
    moment = _moment(value)
    return (now.astimezone(UTC).date() - moment.astimezone(UTC).date()).days


def _year(value: Any) -> int | None:
    return None if value is None or value == "" else _moment(value).year


def _len(value: Any) -> int | None:
    if value is None:
        return None
    return len(value) if isinstance(value, (str, list, dict)) else len(str(value))


def _abs(value: Any) -> Any:
    return None if value is None else abs(number(value))


@dataclass(frozen=True)
class Function:
    impl: Callable[..., Any]
    arity: tuple[int, int | None]
    clock: bool = False
    """Takes the evaluation clock as its first argument (``now``, ``days_since``)."""


FUNCTIONS: dict[str, Function] = {
    "lower": Function(_text_fn(str.lower), (1, 1)),
    "upper": Function(_text_fn(str.upper), (1, 1)),
    "trim": Function(_text_fn(str.strip), (1, 1)),
    "len": Function(_len, (1, 1)),
    "concat": Function(_concat, (1, None)),
    "coalesce": Function(_coalesce, (1, None)),
    "round": Function(_round, (1, 2)),
    "abs": Function(_abs, (1, 1)),
    "int": Function(_int, (1, 1)),
    "float": Function(_float, (1, 1)),
    "str": Function(_str, (1, 1)),
    "contains": Function(_contains, (2, 2)),
    "startswith": Function(_affix("startswith"), (2, 2)),
    "endswith": Function(_affix("endswith"), (2, 2)),
    "days_since": Function(_days_since, (1, 1), clock=True),
    "year": Function(_year, (1, 1)),
    "now": Function(lambda now: now, (0, 0), clock=True),
}
