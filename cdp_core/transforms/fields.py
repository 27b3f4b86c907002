"""Field addressing shared by every builtin transform, and small option helpers.

A field name addresses ``record.data``: ``city``, or ``address.city`` for a
nested dict, ``items.0.sku`` for a list's item. The prefix ``identifiers.``
addresses ``record.identifiers`` (``identifiers.email``). Reading follows
:func:`cdp_core.fieldpaths.lookup`: a flat data key that itself contains a dot
(``"utm.source"``) wins over the nested reading, because CSV headers and vendor
payloads do contain such keys. Writing creates nested dicts (never list items).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from cdp_core.fieldpaths import lookup
from cdp_core.records import Record
from cdp_core.timeutil import utc_now

IDENTIFIERS_PREFIX = "identifiers."


class _Missing:
    """The absence of a field; distinct from ``None`` (a field present with null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def check_field_name(name: str) -> str:
    """Validate a field name from the config; returned unchanged when it is fine."""
    if not name or name != name.strip():
        raise ValueError(f"invalid field name {name!r}: empty or surrounded by spaces")
    parts = name.split(".")
    if any(not part for part in parts):
        raise ValueError(f"invalid field name {name!r}: empty part between dots")
    if parts[0] == "identifiers" and len(parts) != 2:
        raise ValueError(f"invalid field name {name!r}: use identifiers.TYPE, e.g. identifiers.email")
    return name


FieldName = Annotated[
    str,
    AfterValidator(check_field_name),
    Field(description="a data field (dotted for nested dicts) or identifiers.TYPE"),
]

OnInvalid = Literal["reject", "null", "keep"]


class FieldPath:
    """A compiled field name: get, set and pop it on a record without re-parsing."""

    __slots__ = ("in_identifiers", "key", "name", "parts")

    def __init__(self, name: str) -> None:
        check_field_name(name)
        self.name = name
        self.in_identifiers = name.startswith(IDENTIFIERS_PREFIX)
        self.key = name[len(IDENTIFIERS_PREFIX) :] if self.in_identifiers else name
        # ``parts`` is None for the common case (a plain top-level key), the fast path.
        self.parts: tuple[str, ...] | None = None
        if not self.in_identifiers and "." in name:
            self.parts = tuple(name.split("."))

    def __repr__(self) -> str:
        return f"FieldPath({self.name!r})"

    def get(self, record: Record) -> Any:
        """The value, or ``MISSING`` when the field is absent."""
        if self.in_identifiers:
            return record.identifiers.get(self.key, MISSING)
        if self.parts is None:
            return record.data.get(self.name, MISSING)
        return lookup(record.data, self.name, MISSING)

    def set(self, record: Record, value: Any) -> None:
        """Write ``value``; intermediate dicts are created. Identifiers hold text (or a list of texts: several
        values of one type), so null or an empty list removes one."""
        if self.in_identifiers:
            if isinstance(value, list):
                value = [v if isinstance(v, str) else str(v) for v in value if v is not None and v != ""]
                if value:
                    record.identifiers[self.key] = value
                else:
                    record.identifiers.pop(self.key, None)
            elif value is None or value is MISSING or value == "":
                record.identifiers.pop(self.key, None)
            else:
                record.identifiers[self.key] = value if isinstance(value, str) else str(value)
            return
        data = record.data
        if self.parts is None or self.name in data:
            data[self.name] = value
            return
        target = data
        for part in self.parts[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = target[part] = {}
            target = child
        target[self.parts[-1]] = value

    def pop(self, record: Record) -> Any:
        """Remove the field and return its value (``MISSING`` if it was absent)."""
        if self.in_identifiers:
            return record.identifiers.pop(self.key, MISSING)
        data = record.data
        if self.parts is None or self.name in data:
            return data.pop(self.name, MISSING)
        target: Any = data
        for part in self.parts[:-1]:
            target = target.get(part) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            return MISSING
        return target.pop(self.parts[-1], MISSING)

    def suffixed(self, suffix: str) -> FieldPath:
        return FieldPath(self.name + suffix)


class Invalid:
    """A value a normalizer refuses, and why (phrased to follow "FIELD: ")."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem

    def __repr__(self) -> str:
        return f"Invalid({self.problem!r})"


def is_blank(value: Any) -> bool:
    """Missing, null, or text that is empty once trimmed: treated as "no value" everywhere."""
    return value is MISSING or value is None or (isinstance(value, str) and not value.strip())


def show(value: Any, limit: int = 60) -> str:
    """A value as quoted in a reject reason: its repr, cut so a huge payload cannot flood quarantine."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def today(as_of: date | datetime | None) -> date:
    """The reference date: ``as_of`` when configured (tests, backfills), else today in UTC."""
    if as_of is None:
        return utc_now().date()
    return as_of.date() if isinstance(as_of, datetime) else as_of
