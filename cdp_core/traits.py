"""Trait mappings: which fields of a stream's profile records become profile traits, and under which names.

A stream declares its mapping (``Stream.traits``): a file stream in its table of
connectors.toml (``traits = { first_name = "firstname", tags = { field = "tags", type = "list" } }``,
or a list of field names kept under their own name), a vendor stream in its code (overridable
in its connector's ``traits.STREAM``). The runner hands the stream's :class:`TraitMap` to every
record of the stream (``Record.trait_map``, one shared object, never a copy per record), so it
passes every transform; the profile store applies it to the record's data as it arrives there,
with the field names it has then (after a ``rename``, after ``normalize``). Without a mapping
every field of a profile record is a trait, as before mappings existed.

Types: ``string`` (text, trimmed), ``number`` (an int or a finite float; text such as ``"12.50"``
read as one), ``boolean`` (``true/false``, ``yes/no``, ``1/0``...), ``timestamp`` (ISO 8601 text or
Unix seconds, kept as ISO 8601 in UTC), ``list`` (a JSON list kept; text split at ``separator``,
default ``,``, each item trimmed). Unset: the value as it is. An empty value (absent, null, ``""``)
sets no trait. A value that cannot be read as its type sets no trait either: the record is still
stored whole, and the problem is counted on the run (:meth:`TraitMap.apply` says why).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, field_validator

from cdp_core.keypaths import did_you_mean

__all__ = [
    "TRAIT_TYPES",
    "TraitField",
    "TraitMap",
    "TraitProblem",
    "TraitsByStream",
    "TraitsOption",
    "check_trait_streams",
    "stream_traits",
    "trait_streams",
]

TRAIT_TYPES = ("string", "number", "boolean", "timestamp", "list")
TraitType = Literal["string", "number", "boolean", "timestamp", "list"]
TRAIT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
"""A trait name: what segment rules and ``--where`` name, so a plain identifier."""


class TraitField(BaseModel):
    """One trait of a mapping: the field it reads and the type it is kept as."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(description="the record field (a dotted path such as 'address.city' reads inside it)")
    type: str | None = Field(default=None, description=f"one of {', '.join(TRAIT_TYPES)}; unset: the value as it is")
    separator: str = Field(default=",", min_length=1, description="type 'list': what splits text into items")

    @field_validator("field")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value or value != value.strip() or any(part == "" for part in value.split(".")):
            raise ValueError(
                f"not a field path: {value!r} (a field name, or names joined by '.' such as 'address.city')"
            )
        return value

    @field_validator("type")
    @classmethod
    def _type(cls, value: str | None) -> str | None:
        if value is not None and value not in TRAIT_TYPES:
            raise ValueError(f"unknown trait type {value!r}{did_you_mean(value, list(TRAIT_TYPES))}; types: {', '.join(TRAIT_TYPES)}")
        return value


def _expand(value: Any) -> Any:
    """The short forms: a list of field names (each kept under its own name), a field name for a table."""
    if isinstance(value, list):
        return {name: {"field": name} for name in value} if all(isinstance(n, str) for n in value) else value
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for name, spec in value.items():
            if isinstance(spec, str):
                spec = {"field": spec}
            elif isinstance(spec, dict) and "field" not in spec:
                spec = {"field": name, **spec}
            out[name] = spec
        return out
    return value


def _names(value: dict[str, TraitField]) -> dict[str, TraitField]:
    for name in value:
        if not TRAIT_NAME.fullmatch(name):
            raise ValueError(
                f"trait name {name!r} is not allowed: a letter or '_', then up to 63 letters, digits or '_'"
            )
    return value


TraitsOption = Annotated[dict[str, TraitField], BeforeValidator(_expand), AfterValidator(_names)]
"""The connectors.toml form of a mapping: ``{trait = "field"}``, ``{trait = {field, type, separator}}``
(``field`` defaults to the trait's name) or ``["field", ...]``."""

TraitsByStream = dict[str, TraitsOption]
"""A vendor connector's ``traits`` option: stream name -> the mapping that replaces its default."""


def trait_streams(*streams: str) -> AfterValidator:
    """The check of a vendor config's ``traits`` option, whose keys must be among ``streams``:
    ``traits: Annotated[TraitsByStream, trait_streams("contacts", "companies")] = Field(default_factory=dict, ...)``
    (a type checker reads ``TraitsByStream``; pydantic runs the check)."""

    def check(value: dict[str, Any]) -> dict[str, Any]:
        check_trait_streams(value, list(streams))
        return value

    return AfterValidator(check)


def stream_traits(default: TraitMap | None, overrides: Mapping[str, Mapping[str, TraitField]], stream: str) -> TraitMap | None:
    """A vendor stream's mapping: the config's ``traits.STREAM`` when it is set, else the stream's default."""
    override = overrides.get(stream)
    return TraitMap(override) if override is not None else default

_ADAPTER: TypeAdapter[dict[str, TraitField]] = TypeAdapter(TraitsOption)


def check_trait_streams(traits: Mapping[str, Any], streams: list[str]) -> None:
    """For a vendor config's ``traits`` validator: every key names one of ``streams`` (ValueError otherwise)."""
    for name in traits:
        if name not in streams:
            raise ValueError(f"no stream {name!r}{did_you_mean(name, streams)}; streams with traits: {', '.join(streams)}")


@dataclass(frozen=True)
class TraitProblem:
    """A value that could not be read as its trait's type. ``why`` holds no value: it is counted as is."""

    trait: str
    field: str
    why: str
    value: Any

    def message(self) -> str:
        return f"trait {self.trait!r} not set: field {self.field!r} is {self.why}"


class _Unreadable(Exception):
    def __init__(self, why: str) -> None:
        self.why = why


_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_TRUE = frozenset({"true", "yes", "y", "on", "1", "t"})
_FALSE = frozenset({"false", "no", "n", "off", "0", "f"})


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    return "text" if isinstance(value, str) else f"a {type(value).__name__}"


def _scalar(value: Any, wanted: str) -> None:
    if isinstance(value, (dict, list, tuple)):
        raise _Unreadable(f"{_kind(value)}, not {wanted}")


def _string(value: Any, _sep: str) -> Any:
    _scalar(value, "text")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def _number(value: Any, _sep: str) -> Any:
    _scalar(value, "a number")
    if isinstance(value, bool):
        raise _Unreadable("a boolean, not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, (float, Decimal)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _INT.fullmatch(text):
            return int(text)
        if not _FLOAT.fullmatch(text):
            raise _Unreadable("text that is not a number")
        number = float(text)
    else:
        raise _Unreadable(f"{_kind(value)}, not a number")
    if not math.isfinite(number):
        raise _Unreadable("not a finite number")
    return number


def _boolean(value: Any, _sep: str) -> Any:
    _scalar(value, "a boolean")
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if not text:
            return None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _Unreadable(f"{_kind(value)} that is not true/false, yes/no or 1/0")


def _timestamp(value: Any, _sep: str) -> Any:
    _scalar(value, "a timestamp")
    from cdp_core.incremental import parse_timestamp  # the one reading of a point in time

    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    try:
        return parse_timestamp(value).isoformat()
    except ValueError as exc:
        raise _Unreadable(f"{_kind(value)} that is not a timestamp ({exc})") from None


def _list(value: Any, separator: str) -> Any:
    if isinstance(value, dict):
        raise _Unreadable("an object, not a list")
    if isinstance(value, (list, tuple)):
        items = [item for item in value if item is not None and item != ""]
    elif isinstance(value, str):
        items = [item.strip() for item in value.split(separator)]
        items = [item for item in items if item]
    else:
        items = [value]
    return items or None


_CONVERT: dict[str | None, Callable[[Any, str], Any]] = {
    "string": _string,
    "number": _number,
    "boolean": _boolean,
    "timestamp": _timestamp,
    "list": _list,
}


class TraitMap:
    """A stream's trait mapping, ready to apply. Immutable and shared: copying a record never copies it."""

    __slots__ = ("_plan", "fields")

    def __init__(self, fields: Mapping[str, TraitField]) -> None:
        self.fields: dict[str, TraitField] = dict(fields)
        from cdp_core.fieldpaths import lookup

        def getter(path: str) -> Callable[[Mapping[str, Any]], Any]:
            return (lambda data: data.get(path)) if "." not in path else (lambda data: lookup(data, path))

        self._plan = [
            (name, f.field, getter(f.field), _CONVERT.get(f.type), f.separator) for name, f in self.fields.items()
        ]

    @classmethod
    def of(cls, spec: Any) -> TraitMap:
        """A mapping from its connectors.toml form (see :data:`TraitsOption`); pydantic's ValidationError if bad."""
        if isinstance(spec, TraitMap):
            return spec
        return cls(_ADAPTER.validate_python(spec))

    def apply(self, data: Mapping[str, Any]) -> tuple[dict[str, Any], list[TraitProblem]]:
        """The traits ``data`` gives (trait name -> value), and the values that could not be converted."""
        traits: dict[str, Any] = {}
        problems: list[TraitProblem] = []
        for name, path, get, convert, separator in self._plan:
            value = get(data)
            if value is None or value == "":
                continue
            if convert is not None:
                try:
                    value = convert(value, separator)
                except _Unreadable as exc:
                    problems.append(TraitProblem(name, path, exc.why, value))
                    continue
                if value is None:
                    continue
            traits[name] = value
        return traits, problems

    def renamed(self, moves: Mapping[str, str]) -> TraitMap:
        """This mapping after a ``rename`` transform's moves (old field -> new field, all at once):
        a trait that read a moved field (or a path inside it) reads it under its new name."""
        fields: dict[str, TraitField] = {}
        for name, spec in self.fields.items():
            path = spec.field
            for old, new in moves.items():
                if path == old or path.startswith(old + "."):
                    path = new + path[len(old) :]
                    break
            fields[name] = spec if path == spec.field else spec.model_copy(update={"field": path})
        return self if fields == self.fields else TraitMap(fields)

    def to_config(self) -> dict[str, Any]:
        """The mapping as connectors.toml would write it (for docs and ``cdp plugins``)."""
        return {name: f.model_dump(exclude_defaults=True) for name, f in self.fields.items()}

    def __copy__(self) -> TraitMap:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> TraitMap:
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TraitMap) and other.fields == self.fields

    def __hash__(self) -> int:
        return hash(tuple(self.fields.items()))

    def __repr__(self) -> str:
        return f"TraitMap({self.to_config()!r})"
