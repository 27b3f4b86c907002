"""The record: the one shape every source emits and every destination receives.

A record carries the stream it came from, its kind, its data, the person's
identifiers, when it happened and a stable key for idempotency.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from cdp_core.traits import TraitMap

JsonValue = Any
"""A value that survives ``json.dumps``: cursors and raw payloads are stored as JSON."""


class RecordKind(StrEnum):
    """What a record says about a person; the profile store understands each kind."""

    profile = "profile"
    event = "event"
    order = "order"
    nps_response = "nps_response"
    consent = "consent"


class Record(BaseModel):
    """One unit of customer data flowing through a sync graph.

    ``key`` is stable across deliveries of the same fact (for example
    ``"<contact id>"`` for a CRM contact, ``"<order id>"`` for an order), so a
    destination that upserts by key never stores it twice.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=False, arbitrary_types_allowed=True)

    stream: str
    kind: RecordKind = RecordKind.profile
    key: str
    data: dict[str, Any] = Field(default_factory=dict)
    identifiers: dict[str, str | list[str]] = Field(default_factory=dict)
    """Identifier type -> value; a list means several values of that type on this one record (a second
    email, a work phone), in the order the source gave them. Read them through :meth:`identifier_values`
    and :meth:`identifier_pairs`, which treat a single value and a list alike."""
    occurred_at: datetime | None = None
    deleted: bool = False
    """A tombstone: the vendor deleted the record ``(stream, key)`` (its ``kind`` the deleted record's).
    Data and identifiers may be empty; ``occurred_at`` is the deletion time when the vendor gives one.
    The profile store removes the record; destinations that do not handle deletions skip it."""
    missing_ok: bool = False
    """Only on a tombstone: the vendor's deletion may name a record never synced (a delete webhook that
    gives an id only, so the connector deletes every record that id may have). The profile store deletes
    the record when it holds it, exactly as any tombstone, and passes silently when it does not; a plain
    tombstone of a record the store does not hold is counted as a warning (a wrong stream name or key)."""
    trait_map: TraitMap | None = Field(default=None, exclude=True, repr=False)
    """The trait mapping of the stream the record came from (cdp_core/traits.py), set by the runner:
    one object shared by every record of the stream, kept through copies; only :meth:`raw` writes it."""

    @field_validator("missing_ok")
    @classmethod
    def _only_on_tombstones(cls, value: bool, info: ValidationInfo) -> bool:
        # Runs only when the flag is given: records without it cost nothing more to build.
        if value and not info.data.get("deleted"):
            where = f"{info.data.get('stream')}|{info.data.get('key')}"
            raise ValueError(f"record {where}: missing_ok is only meaningful on a tombstone (deleted=True)")
        return value

    @field_validator("trait_map", mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        return TraitMap.of(value) if isinstance(value, dict) else value

    def identifier_values(self, type_name: str) -> list[str]:
        """Every value of one identifier type, in order (``[]`` when the record has none)."""
        return identifier_list(self.identifiers.get(type_name))

    def first_identifier(self, type_name: str) -> str | None:
        """The first (primary) value of one identifier type, or None: for a vendor field that takes one."""
        values = identifier_list(self.identifiers.get(type_name))
        return values[0] if values else None

    def identifier_pairs(self) -> list[tuple[str, str]]:
        """Every ``(type, value)`` the record carries, lists flattened, in order."""
        return [(t, v) for t, value in self.identifiers.items() for v in identifier_list(value)]

    def raw(self) -> dict[str, Any]:
        """The record as JSON-safe data, as kept in quarantine; with its trait mapping as it is here
        (after a rename, say), so a retry from this node maps it as this run would have."""
        out = self.model_dump(mode="json")
        if self.trait_map is not None:
            out["trait_map"] = self.trait_map.to_config()
        return out


def _template() -> tuple[dict[str, Any], dict[str, Callable[[], Any]], bool]:
    """Every field of Record in declaration order with its plain default, the fields built by a factory,
    and whether a record is its fields alone (no private attributes, no post-init hook, no factory that
    reads the other fields), which :func:`trusted_record` can build directly."""
    plain: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    simple = not Record.__private_attributes__ and Record.__pydantic_post_init__ is None
    for name, info in Record.model_fields.items():
        plain[name] = info.default  # PydanticUndefined for a required field: the caller must give it
        if info.default_factory is not None:
            factories[name] = info.default_factory  # type: ignore[assignment]
            # a factory of the other fields' values (pydantic >= 2.10): pydantic's constructor calls it so
            simple = simple and not getattr(info, "default_factory_takes_validated_data", False)
    return plain, factories, simple


_FIELDS, _FACTORIES, _PLAIN = _template()
_new = Record.__new__
_set = object.__setattr__


def trusted_record(values: dict[str, Any]) -> Record:
    """A Record from ``values`` already in their validated form, without validating them again.

    For a source that has checked its shapes itself (the file sources: str keys, a str stream and
    key, identifiers as str or lists of str, ``occurred_at`` through the field's own validator):
    ``Record(**values)`` would cost 2.3 us a record and this one 1.0 us (bench/file_sources.py).
    ``values`` must hold every required field; the others take their defaults, as with ``Record(...)``,
    and the result is the same in every way (field order, ``model_fields_set``); ``data`` is kept as
    the object given, not copied.
    """
    if not _PLAIN:  # private attributes or a post-init hook: pydantic's own unvalidated constructor
        return Record.model_construct(**values)
    fields = _FIELDS.copy()
    fields.update(values)  # in place: the declaration order stays, as validation would give it
    for name, factory in _FACTORIES.items():
        if name not in values:
            fields[name] = factory()
    record = _new(Record)
    _set(record, "__dict__", fields)
    _set(record, "__pydantic_fields_set__", set(values))
    _set(record, "__pydantic_extra__", None)
    _set(record, "__pydantic_private__", None)
    return record


def identifier_list(value: str | list[str] | None) -> list[str]:
    """An identifier value as a list: ``None`` -> ``[]``, ``"a"`` -> ``["a"]``, a list as it is."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


class Rejected(BaseModel):
    """A record that could not be processed, with why and where, bound for quarantine."""

    model_config = ConfigDict(extra="forbid")

    reason: str
    raw: JsonValue
    key: str | None = None
