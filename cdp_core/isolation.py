"""Per-record isolation for sources: what a source cannot read becomes a quarantine entry, not a failed run.

A source validates the *envelope* of what it reads (a page's shape, a file's
encoding) as a whole: a malformed envelope fails the read, and the cursor stays at
the last committed page. Each *item* inside it is validated on its own with
:func:`split_items`: an item that fails becomes a :class:`~cdp_core.records.Rejected`
(the reason with where it came from, and the raw payload) and the others go on::

    body = response_json(response, Envelope)            # items: list[Any]; a bad envelope raises
    good, rejects = split_items(body.items, Item, where=f"GET {path}")
    yield Page([to_record(item) for item, raw in good], cursor, rejects)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from cdp_core.records import JsonValue, Rejected

MAX_DEPTH = 64
"""Items nested deeper than this (objects and arrays) are quarantined: databases, JSON
encoders and every later step have their limits, and no customer record is this deep."""

RAW_TEXT_LIMIT = 1 << 20
"""At most this many characters of an unparsable item's text are kept in quarantine."""

M = TypeVar("M", bound=BaseModel)


def depth(value: Any) -> int:
    """How deeply ``value`` nests objects and arrays (a scalar: 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level) for child in children)
    return deepest


def nesting_too_deep(text: str) -> bool:
    """Whether JSON ``text`` opens more than :data:`MAX_DEPTH` levels at some point (brackets in strings aside)."""
    if text.count("{") + text.count("[") <= MAX_DEPTH:
        return False  # the common case, decided without a scan
    level = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            level += 1
            if level > MAX_DEPTH:
                return True
        elif char in "}]":
            level -= 1
    return False


def text_payload(text: str) -> JsonValue:
    """The raw payload of an item that could not be parsed: its text (the first :data:`RAW_TEXT_LIMIT` characters)."""
    if len(text) <= RAW_TEXT_LIMIT:
        return {"text": text}
    return {"text": text[:RAW_TEXT_LIMIT], "truncated": True, "length": len(text)}


def raw_payload(item: Any) -> JsonValue:
    """An item as quarantine keeps it: as it came when it is JSON-safe and not too deep, else as its JSON text."""
    try:
        text = json.dumps(item, allow_nan=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return text_payload(f"<a {type(item).__name__} that cannot be written as JSON>")
    return text_payload(text) if depth(item) > MAX_DEPTH else item


def describe(exc: ValidationError, limit: int = 5) -> str:
    """Field paths and messages of a validation error, without the input values (personal data)."""
    errors = exc.errors(include_url=False, include_input=False)
    parts = [f"{'.'.join(str(p) for p in err['loc']) or '(item)'}: {err['msg']}" for err in errors[:limit]]
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts)


def item_key(item: Any, key_field: str) -> str | None:
    """The item's id for the quarantine entry, when it has a usable one."""
    if isinstance(item, dict):
        value = item.get(key_field)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def split_items(
    items: Iterable[Any], model: type[M], *, where: str, key_field: str = "id", prefix: str = ""
) -> tuple[list[tuple[M, Any]], list[Rejected]]:
    """Validate each item with ``model``: (the valid ones with their raw form, the rejects).

    :param where: where the items came from, for the reason (``"GET /lists/abc/members"``). The
        reason names no index: the same bad item met again on another page or in another run
        gives the same reason, so quarantine keeps it once.
    :param key_field: the raw item's id field, kept as the reject's key when present.
    :param prefix: put before every reason (the connector's name).
    """
    good: list[tuple[M, Any]] = []
    rejects: list[Rejected] = []
    spot = f"{prefix}an item of {where}"
    for item in items:
        if depth(item) > MAX_DEPTH:
            rejects.append(reject(f"{spot}: nested deeper than {MAX_DEPTH} levels", item, key=item_key(item, key_field)))
            continue
        try:
            good.append((model.model_validate(item), item))
        except ValidationError as exc:
            rejects.append(
                reject(f"{spot}: does not match {model.__name__}: {describe(exc)}", item, key=item_key(item, key_field))
            )
    return good, rejects


def reject(reason: str, item: Any, *, key: str | None = None) -> Rejected:
    """A quarantine entry for ``item`` (kept as :func:`raw_payload` makes it JSON-safe)."""
    return Rejected(reason=reason, raw=raw_payload(item), key=key)


__all__ = [
    "MAX_DEPTH",
    "RAW_TEXT_LIMIT",
    "depth",
    "describe",
    "item_key",
    "nesting_too_deep",
    "raw_payload",
    "reject",
    "split_items",
    "text_payload",
]
