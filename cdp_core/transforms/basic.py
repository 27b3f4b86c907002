"""Reshaping transforms: ``rename`` fields, ``select`` the ones to keep, ``map`` values, ``identify`` (data fields -> identifiers)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from cdp_core.base import PluginConfig, Transform, TransformContext
from cdp_core.records import Record
from cdp_core.traits import TraitMap
from cdp_core.transforms.fields import MISSING, FieldName, FieldPath, show

# -- rename ---------------------------------------------------------------------------------


class RenameConfig(PluginConfig):
    fields: dict[FieldName, FieldName] = Field(
        min_length=1, description="old name -> new name; all renames apply at once, so {a = 'b', b = 'a'} swaps"
    )

    @model_validator(mode="after")
    def _distinct_targets(self) -> RenameConfig:
        seen: dict[str, str] = {}
        for old, new in self.fields.items():
            if new in seen:
                raise ValueError(f"fields: {seen[new]!r} and {old!r} are both renamed to {new!r}")
            seen[new] = old
        return self


class Rename(Transform):
    """Renames fields (data or identifiers); a field that is absent is skipped."""

    config_model = RenameConfig
    config: RenameConfig

    def __init__(self, config: RenameConfig) -> None:
        super().__init__(config)
        self._moves = [(FieldPath(old), FieldPath(new)) for old, new in config.fields.items()]
        plain = all(
            a.parts is None and b.parts is None and not (a.in_identifiers or b.in_identifiers) for a, b in self._moves
        )
        self._plain = [(a.name, b.name) for a, b in self._moves] if plain else None
        self._data_moves = {a.name: b.name for a, b in self._moves if not a.in_identifiers}
        self._mappings: dict[int, tuple[TraitMap, TraitMap]] = {}

    def _carry_traits(self, batch: list[Record]) -> None:
        """A stream's trait mapping names fields as the stream emits them: the records' mapping is
        renamed with their data (once per mapping, and still one object shared by the stream's records)."""
        cache = self._mappings
        for record in batch:
            mapping = record.trait_map
            if mapping is not None:
                known = cache.get(id(mapping))
                if known is None or known[0] is not mapping:
                    known = cache[id(mapping)] = (mapping, mapping.renamed(self._data_moves))
                record.trait_map = known[1]

    def process(self, batch: list[Record], ctx: TransformContext) -> list[Record]:
        self._carry_traits(batch)
        if self._plain is not None:  # top-level data keys only: plain dict operations
            moves = self._plain
            for record in batch:
                data = record.data
                values = [(new, data.pop(old, MISSING)) for old, new in moves]
                for new, value in values:
                    if value is not MISSING:
                        data[new] = value
            return batch
        for record in batch:
            taken = [(target, source.pop(record)) for source, target in self._moves]
            for target, value in taken:
                if value is not MISSING:
                    target.set(record, value)
        return batch


# -- select ---------------------------------------------------------------------------------


class SelectConfig(PluginConfig):
    fields: list[FieldName] = Field(
        min_length=1, description="the data fields to keep (top-level names); every other field is dropped"
    )
    identifiers: list[str] | None = Field(
        default=None, description="the identifier types to keep; [] drops them all; unset keeps them all"
    )

    @model_validator(mode="after")
    def _top_level(self) -> SelectConfig:
        for name in self.fields:
            path = FieldPath(name)
            if path.in_identifiers:
                raise ValueError(f"fields: {name!r} is an identifier: list its type in 'identifiers' instead")
        return self


class Select(Transform):
    """Keeps only the listed data fields (and, if given, identifier types): what leaves the graph is what
    was chosen, never whatever else a source or the profile store happens to carry."""

    config_model = SelectConfig
    config: SelectConfig

    def process(self, batch: list[Record], ctx: TransformContext) -> list[Record]:
        keep = self.config.fields
        types = self.config.identifiers
        for record in batch:
            data = record.data
            record.data = {name: data[name] for name in keep if name in data}
            if types is not None:
                record.identifiers = {t: v for t, v in record.identifiers.items() if t in types}
        return batch


# -- map ------------------------------------------------------------------------------------


class MapConfig(PluginConfig):
    values: dict[FieldName, dict[str, Any]] = Field(
        min_length=1, description="field -> {from = to, ...}; values are compared as trimmed text"
    )
    defaults: dict[FieldName, Any] = Field(
        default_factory=dict, description="field -> value for present values that are not in the mapping"
    )
    targets: dict[FieldName, FieldName] = Field(
        default_factory=dict, description="field -> where to write the mapped value (default: in place)"
    )
    ignore_case: bool = Field(default=False, description="match 'HERR' and 'herr' to the key 'Herr'")

    @model_validator(mode="after")
    def _known_fields(self) -> MapConfig:
        for option in ("defaults", "targets"):
            unknown = [f for f in getattr(self, option) if f not in self.values]
            if unknown:
                raise ValueError(
                    f"{option}: {', '.join(map(repr, unknown))} not in values (known: {', '.join(self.values)})"
                )
        for field, mapping in self.values.items():
            if not mapping:
                raise ValueError(f"values: the mapping of {field!r} is empty")
            if self.ignore_case:
                folded: dict[str, str] = {}
                for key in mapping:
                    other = folded.setdefault(key.strip().casefold(), key)
                    if other != key:
                        raise ValueError(f"values.{field}: {other!r} and {key!r} are the same with ignore_case")
        return self


def _as_key(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return None  # lists and dicts never match


class Map(Transform):
    """Maps values through a table per field ("Herr" -> "m"); null and absent values stay as they are."""

    config_model = MapConfig
    config: MapConfig

    def __init__(self, config: MapConfig) -> None:
        super().__init__(config)
        fold = str.casefold if config.ignore_case else None
        self._rules = []
        for field, mapping in config.values.items():
            table = {(fold(k.strip()) if fold else k.strip()): v for k, v in mapping.items()}
            target = FieldPath(config.targets.get(field, field))
            default = config.defaults.get(field, MISSING)
            self._rules.append((FieldPath(field), target, table, default))
        self._fold = fold

    def process(self, batch: list[Record], ctx: TransformContext) -> list[Record]:
        fold = self._fold
        for record in batch:
            for source, target, table, default in self._rules:
                value = source.get(record)
                if value is MISSING or value is None:
                    continue
                key = _as_key(value)
                if key is not None and fold is not None:
                    key = fold(key)
                mapped = table.get(key, default) if key is not None else default
                if mapped is not MISSING:
                    target.set(record, mapped)
        return batch


# -- identify -------------------------------------------------------------------------------

IdentifierType = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class IdentifyConfig(PluginConfig):
    identifiers: dict[IdentifierType, FieldName] = Field(
        min_length=1,
        description="identifier type -> data field, e.g. {email = 'email_address', hubspot_contact_id = 'id'}",
    )
    overwrite: bool = Field(default=True, description="replace an identifier of that type the record already has")


class _Bad:
    """Not a value an identifier can take (a bool, an object)."""


_BAD = _Bad()


def _identifier_text(value: Any) -> str | None | _Bad:
    """One identifier value as text: None when absent or null, ``_BAD`` when it cannot be one."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (bool, list, dict)):
        return _BAD
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # JSON ids that went through a float: 123.0 -> "123"
    if isinstance(value, (int, float)):
        return str(value)
    return None


class Identify(Transform):
    """Copies data fields into typed identifiers (as text; a list field gives several values of the
    type, each a text or number). Blank values add nothing.

    Run ``normalize`` after it: identifiers must be normalized before any match.
    """

    config_model = IdentifyConfig
    config: IdentifyConfig

    def __init__(self, config: IdentifyConfig) -> None:
        super().__init__(config)
        self._pairs = [(id_type, FieldPath(field)) for id_type, field in config.identifiers.items()]

    def process(self, batch: list[Record], ctx: TransformContext) -> list[Record]:
        overwrite = self.config.overwrite
        out = []
        for record in batch:
            problems = []
            identifiers = record.identifiers
            updates: dict[str, str | list[str]] = {}
            for id_type, path in self._pairs:
                if not overwrite and id_type in identifiers:
                    continue
                value = path.get(record)
                if isinstance(value, list):  # several values of one type: each a text or number
                    texts = [_identifier_text(item) for item in value]
                    if any(isinstance(t, _Bad) for t in texts):
                        problems.append(
                            f"{path.name}: an identifier list takes text or number values, got {show(value)}"
                        )
                        continue
                    kept = list(dict.fromkeys(t for t in texts if isinstance(t, str) and t))
                    if kept:
                        updates[id_type] = kept
                    continue
                text = _identifier_text(value)
                if isinstance(text, _Bad):
                    problems.append(f"{path.name}: an identifier takes one text or number value, got {show(value)}")
                    continue
                if text:
                    updates[id_type] = text
            if problems:
                ctx.reject(record, "; ".join(problems))  # before any change, so quarantine holds the input
            else:
                identifiers.update(updates)
                out.append(record)
        return out
