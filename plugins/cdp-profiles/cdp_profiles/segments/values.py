"""How rules compare, add and test values: the definition the SQL compiler reproduces (docs/segments.md).

The kernel's lenient reading, made exact enough to be the same on both databases:

- numbers compare as 64-bit floats; text compares by code point (PostgreSQL with ``COLLATE "C"``);
- a number meets *numeric text* (``-?[0-9]+(\\.[0-9]+)?``, nothing else: no spaces, no ``+``,
  no exponent) as a number; other text is not comparable with a number;
- a boolean meets the words ``true/yes/1/on/y/t`` and ``false/no/0/off/n/f/""`` (case-insensitive in
  A-Z, spaces trimmed) as true and false;
- what is not comparable is never equal (``==`` false, ``!=`` true) and never ordered (``<`` false);
- null equals only null and is never ordered.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from cdp_profiles.segments.language import kind_of

NUMERIC_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
TRUE_WORDS = frozenset({"true", "yes", "1", "on", "y", "t"})
FALSE_WORDS = frozenset({"", "false", "no", "0", "off", "n", "f"})
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_TO_LOWER = str.maketrans(_UPPER, _LOWER)
_TO_UPPER = str.maketrans(_LOWER, _UPPER)


def ascii_lower(text: str) -> str:
    return text.translate(_TO_LOWER)


def ascii_upper(text: str) -> str:
    return text.translate(_TO_UPPER)


def number(value: Any) -> float | None:
    """The numeric reading of a value: a number, or numeric text; else None."""
    kind = kind_of(value)
    if kind == "number":
        return float(value)
    if kind == "text" and NUMERIC_TEXT.fullmatch(value):
        return float(value)
    return None


def _word(text: str) -> bool | None:
    word = ascii_lower(text.strip(" "))
    return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None


def truthy(value: Any) -> bool:
    kind = kind_of(value)
    if kind == "null":
        return False
    if kind == "bool":
        return bool(value)
    if kind == "number":
        return float(value) != 0
    if kind == "text":
        return ascii_lower(value.strip(" ")) not in FALSE_WORDS
    if kind == "list":
        return len(value) > 0
    return True


def _pair(a: Any, b: Any) -> tuple[Any, Any] | None:
    """Two non-null values brought to one comparable type, or None."""
    ka, kb = kind_of(a), kind_of(b)
    if ka == "number" and kb == "number":
        return float(a), float(b)
    if ka == "text" and kb == "text":
        return a, b
    if {ka, kb} == {"number", "text"}:
        x, y = number(a), number(b)
        return None if x is None or y is None else (x, y)
    if ka == "bool" and kb == "bool":
        return a, b
    if {ka, kb} == {"bool", "text"}:
        x, y = (a, _word(b)) if ka == "bool" else (_word(a), b)
        return None if x is None or y is None else (x, y)
    if ka == "date" and kb == "date":
        return a, b
    return None


def equals(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    pair = _pair(a, b)
    return pair is not None and pair[0] == pair[1]


def compare(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        return equals(a, b)
    if op == "!=":
        return not equals(a, b)
    if a is None or b is None:
        return False
    pair = _pair(a, b)
    if pair is None:
        return False
    x, y = pair
    if op == "<":
        return bool(x < y)
    if op == "<=":
        return bool(x <= y)
    if op == ">":
        return bool(x > y)
    return bool(x >= y)


def contained(item: Any, container: Any) -> bool:
    """``item in container``: a list by equality, text by substring (text items only)."""
    kind = kind_of(container)
    if kind == "list":
        return any(equals(item, element) for element in container)
    if kind == "text":
        return kind_of(item) == "text" and item in container
    return False


def arith(op: str, a: Any, b: Any) -> float | None:
    """Numbers only (numeric text counts); null for anything else and for a division by zero."""
    x, y = number(a), number(b)
    if x is None or y is None:
        return None
    if op == "+":
        result = x + y
    elif op == "-":
        result = x - y
    elif op == "*":
        result = x * y
    else:
        if y == 0:
            return None
        result = x / y
    return result if math.isfinite(result) else None


def plain(value: Any) -> Any:
    """A value as a rule's result: Decimals as floats, times as ISO text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
