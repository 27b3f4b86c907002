"""What the store's databases can hold: a record with a value beyond it is quarantined, not written.

Checked in Python before the batch's transaction (``ProfileWriter.prepare``), so one bad
value costs its record, never the batch, on either database:

- text (record key, identifiers (each value of a list), and every string and object key in the data, at any depth)
  must not hold a NUL byte: PostgreSQL refuses it in ``text`` and in JSON alike
  (``\\u0000`` cannot be read back as text), and SQLite's functions cut the text there;
  nor a lone surrogate (``\\ud800``), which is no UTF-8 text either database takes;
- numbers in the data must be finite (NaN and ±Infinity are no JSON: they would be stored as
  ``null``), and integers must fit in 64 bits (SQLite's JSON functions read a larger one
  as an approximate float);
- an order's amount goes to ``orders.amount NUMERIC(18,4)``: finite, at most 14 digits before
  the point and 4 after (PostgreSQL would refuse the first and round the second); on SQLite,
  which keeps it as a double, at most 15 significant digits.

A record's data is checked through its JSON first (see :func:`data_problem`: orjson, about a
microsecond for a record); a path such as
``data.items[2].price`` is built only for a record that fails.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from cdp_core.records import Record

AMOUNT_DIGITS = 18
AMOUNT_SCALE = 4
SQLITE_DIGITS = 15
"""Significant digits of a decimal that survive SQLite's NUMERIC affinity (a double) exactly."""
_AMOUNT_LIMIT = Decimal(10) ** (AMOUNT_DIGITS - AMOUNT_SCALE)
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_NUL = "\x00"


def text_problem(text: str) -> str | None:
    """Why the databases cannot store ``text``, or None."""
    if _NUL in text:
        return "text holds a NUL byte (\\x00), which PostgreSQL cannot store"
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError as exc:
            return f"text holds {text[exc.start]!r}, a lone surrogate that is no UTF-8 text"
    return None


def _scalar_problem(value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        return text_problem(value)
    if kind is float:
        if value - value != 0.0:  # NaN or ±Infinity
            return f"{value!r} is not a finite number (JSON cannot hold it)"
        return None
    if kind is int:
        if value > _INT_MAX or value < _INT_MIN:
            return f"integer {value} is beyond the 64-bit range the store holds exactly"
        return None
    return None


def _walk(value: Any) -> tuple[list[str], str] | None:
    """(path parts from the innermost out, why) of the first value the store cannot hold."""
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is str and (_NUL in key or not key.isascii()):
                why = text_problem(key)
                if why is not None:
                    return [f".{key!r}"], f"key {why.replace('text holds', 'holds')}"
            kind = type(item)
            if kind is str:
                if _NUL not in item and item.isascii():
                    continue
            elif kind is int:
                if _INT_MIN <= item <= _INT_MAX:
                    continue
            elif kind is float:
                if item - item == 0.0:
                    continue
            elif kind is dict or kind is list:
                found = _walk(item)
                if found is not None:
                    found[0].append(f".{key}")
                    return found
                continue
            elif item is None or kind is bool:
                continue
            why = _scalar_problem(item)
            if why is not None:
                return [f".{key}"], why
        return None
    if type(value) is list:
        for index, item in enumerate(value):
            if type(item) is dict or type(item) is list:
                found = _walk(item)
            else:
                why = _scalar_problem(item)
                found = None if why is None else ([], why)
            if found is not None:
                found[0].append(f"[{index}]")
                return found
        return None
    why = _scalar_problem(value)
    return None if why is None else ([], why)


def data_json(data: dict[str, Any]) -> bytes | None:
    """``data`` as JSON the way the store writes it (orjson, as ``Bulk.json``), or None where orjson refuses it."""
    try:
        return orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return None


def data_problem(data: dict[str, Any], text: bytes | None = None) -> str | None:
    """``"data.PATH: why"`` for the first value of ``data`` the store cannot hold, or None.

    Most records are cleared by their JSON alone: orjson refuses lone surrogates and
    integers beyond 64 bits, writes a NUL as ``\\u0000`` and NaN or ±Infinity as ``null``.
    Only data that orjson refused, or whose JSON holds either of those, is walked to find
    (and name) the value.

    :param text: ``data_json(data)`` when the caller has it already.
    """
    if text is None:
        text = data_json(data)
    if text is not None and b"\\u0000" not in text and b"null" not in text:
        return None
    try:
        found = _walk(data)
    except RecursionError:
        return "data: nested too deeply to be written as JSON"
    if found is None:
        return None
    parts, why = found
    return f"data{''.join(reversed(parts))}: {why}"


def record_problem(record: Record, data_text: bytes | None = None) -> str | None:
    """The first field of ``record`` (key, identifiers, data) the store cannot hold, or None.

    :param data_text: ``data_json(record.data)`` when the caller has it already (the write path
        stores that JSON as it is).
    """
    key = record.key
    if _NUL in key or not key.isascii():
        why = text_problem(key)
        if why is not None:
            return f"key: {why}"
    for type_name, value in record.identifiers.items():
        if type(value) is str:
            if _NUL in value or not value.isascii():
                why = text_problem(value)
                if why is not None:
                    return f"identifiers.{type_name}: {why}"
            continue
        for index, item in enumerate(value):  # several values of the type: each checked as one
            if type(item) is str and (_NUL in item or not item.isascii()):
                why = text_problem(item)
                if why is not None:
                    return f"identifiers.{type_name}[{index}]: {why}"
    return data_problem(record.data, data_text)


def amount_problem(amount: Decimal | None, sqlite: bool = False) -> str | None:
    """Why ``orders.amount NUMERIC(18,4)`` cannot hold ``amount`` as it is, or None.

    :param sqlite: the store is SQLite, which keeps a fractional NUMERIC as a double: exact
        only up to 15 significant digits.
    """
    if amount is None:
        return None
    if not amount.is_finite():
        return f"order amount {amount} is not a finite number"
    if abs(amount) >= _AMOUNT_LIMIT:
        return (
            f"order amount {amount} does not fit orders.amount NUMERIC({AMOUNT_DIGITS},{AMOUNT_SCALE}) "
            f"(at most {AMOUNT_DIGITS - AMOUNT_SCALE} digits before the point)"
        )
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -AMOUNT_SCALE and amount != amount.quantize(Decimal(1).scaleb(-AMOUNT_SCALE)):
        return (
            f"order amount {amount} has more than {AMOUNT_SCALE} decimal places, "
            f"which orders.amount NUMERIC({AMOUNT_DIGITS},{AMOUNT_SCALE}) would round"
        )
    if sqlite and len(amount.as_tuple().digits) > SQLITE_DIGITS and len(amount.normalize().as_tuple().digits) > SQLITE_DIGITS:
        return (
            f"order amount {amount} has more than {SQLITE_DIGITS} significant digits, "
            "which SQLite keeps only approximately (as a double)"
        )
    return None
