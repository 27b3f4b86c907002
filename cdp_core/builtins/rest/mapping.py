"""One response item -> one :class:`Record` (or a :class:`Rejected` saying why not), as a REST stream's config maps it.

Field paths are dotted (``properties.email``); a path that passes through a list reads
the rest of the path in each element, so ``email.value`` on
``{"email": [{"value": "a@x"}, {"value": "b@x"}]}`` gives both addresses: several values
of one identifier type.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from cdp_core.builtins.rest.config import RestStreamConfig
from cdp_core.fieldpaths import lookup
from cdp_core.incremental import parse_timestamp
from cdp_core.isolation import MAX_DEPTH, depth, describe, reject
from cdp_core.records import Record, Rejected

__all__ = ["ItemMapper", "values_at"]


def values_at(data: Any, path: str) -> list[Any]:
    """Every value at ``path``: one for a plain path, one per element where the path passes through a list."""
    if isinstance(data, list):
        head = path.partition(".")[0]
        if not head.lstrip("-").isdigit():
            return [v for element in data for v in values_at(element, path)]
    if isinstance(data, Mapping):
        if path in data:
            return _leaf(data[path])
        head, dot, rest = path.partition(".")
        if not dot or head not in data:
            return []
        return values_at(data[head], rest)
    if isinstance(data, list):
        head, dot, rest = path.partition(".")
        value = lookup(data, head)
        if value is None:
            return []
        return values_at(value, rest) if dot else _leaf(value)
    return []


def _leaf(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return [v for v in value if v is not None]
    return [value]


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


class ItemMapper:
    """Builds the records of one stream from its config."""

    def __init__(self, config: RestStreamConfig, stream: str, where: str) -> None:
        self.config = config
        self.stream = stream
        self.where = where

    def key(self, item: Any) -> str | None:
        parts = [_text(lookup(item, field)) for field in self.config.primary_key] if isinstance(item, dict) else [None]
        if any(part is None for part in parts):
            return None
        return "|".join(part for part in parts if part is not None)

    def deleted(self, item: dict[str, Any]) -> bool:
        marker = self.config.deleted_when
        return marker is not None and lookup(item, marker.field) == marker.equals

    def record(self, item: Any) -> Record | Rejected:
        """The record of ``item``, or why it cannot be one (the reason names fields, never values)."""
        spot = f"an item of {self.where}"
        if not isinstance(item, dict):
            return reject(f"{spot}: not a JSON object", item)
        if depth(item) > MAX_DEPTH:
            return reject(f"{spot}: nested deeper than {MAX_DEPTH} levels", item)
        key = self.key(item)
        if key is None:
            return reject(f"{spot}: no primary key {'/'.join(self.config.primary_key)}", item)
        try:
            occurred = self._occurred_at(item)
        except ValueError as exc:
            return reject(f"{spot}: {self.config.occurred_at}: {exc}", item, key=key)
        if self.deleted(item):
            return Record(stream=self.stream, kind=self.config.kind, key=key, deleted=True, occurred_at=occurred)
        identifiers: dict[str, str | list[str]] = {}
        for id_type, path in self.config.identifiers.items():
            values = [t for t in (_text(v) for v in values_at(item, path)) if t is not None]
            if values:
                identifiers[id_type] = values[0] if len(values) == 1 and not self._through_list(item, path) else values
        try:
            return Record(
                stream=self.stream, kind=self.config.kind, key=key, data=item, identifiers=identifiers, occurred_at=occurred
            )
        except ValidationError as exc:
            return reject(f"{spot}: {describe(exc)}", item, key=key)

    def _through_list(self, item: dict[str, Any], path: str) -> bool:
        """Whether ``path`` reads a list in ``item`` (then the values stay a list, even a list of one)."""
        current: Any = item
        rest = path
        while isinstance(current, Mapping):
            if rest in current:
                return isinstance(current[rest], list)
            head, dot, rest = rest.partition(".")
            if not dot or head not in current:
                return False
            current = current[head]
        return isinstance(current, list)

    def _occurred_at(self, item: dict[str, Any]) -> datetime | None:
        if self.config.occurred_at is None:
            return None
        value = lookup(item, self.config.occurred_at)
        if value is None or value == "":
            return None
        unit = self.config.incremental.format if self.config.incremental is not None else "iso"
        return parse_timestamp(value, unit if unit in ("s", "ms") else "iso")  # type: ignore[arg-type]
