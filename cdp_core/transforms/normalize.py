"""``normalize``: canonical emails, phones, names, countries and dates, in place.

The email and phone identifiers are always normalized, listed or not: identity
resolution matches identifiers only in normalized form, and a forgotten option
would silently split one person into two profiles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, model_validator

from cdp_core.base import PluginConfig, Transform, TransformContext
from cdp_core.records import Record
from cdp_core.transforms import normalizers
from cdp_core.transforms.fields import MISSING, FieldName, FieldPath, Invalid, OnInvalid
from cdp_core.transforms.normalizers import FieldNormalizer, Normalizer, TimeZoneName
from cdp_core.transforms.phones import Region

ALWAYS: dict[str, Normalizer] = {"email": "email", "phone": "phone"}
"""Identifier types normalized whatever the options say."""


class NormalizeConfig(PluginConfig):
    fields: dict[FieldName, Normalizer] = Field(
        default_factory=dict,
        description="field -> normalizer (email, phone, name, country, datetime, date); "
        "identifiers.email and identifiers.phone are always normalized",
    )
    default_region: Region = Field(
        default="DE", description="ISO 3166-1 alpha-2 region for phone numbers written without a '+' country code"
    )
    on_invalid: OnInvalid = Field(
        default="reject",
        description="a value that cannot be normalized: 'reject' the record (quarantine), set it to 'null', "
        "or 'keep' it unchanged",
    )
    name_case: Literal["keep", "title"] = Field(
        default="keep", description="'title' turns ALL-CAPS or all-lower names into Title Case; mixed case is kept"
    )
    dayfirst: bool = Field(default=True, description="read 01.02.2024 and 01/02/2024 as 1 February (European)")
    timezone: TimeZoneName = Field(default="UTC", description="IANA zone of date/times written without an offset")

    @model_validator(mode="after")
    def _identifiers_fixed(self) -> NormalizeConfig:
        for id_type, kind in ALWAYS.items():
            chosen = self.fields.get(f"identifiers.{id_type}", kind)
            if chosen != kind:
                raise ValueError(f"fields: identifiers.{id_type} is always normalized as {kind!r}, not {chosen!r}")
        return self


Fn = Callable[[Any], Any]


class Normalize(Transform):
    """Normalizes the configured fields and the email/phone identifiers in place."""

    config_model = NormalizeConfig
    config: NormalizeConfig

    def __init__(self, config: NormalizeConfig) -> None:
        super().__init__(config)

        def build(kind: Normalizer) -> FieldNormalizer:
            return normalizers.build(
                kind,
                region=config.default_region,
                dayfirst=config.dayfirst,
                timezone=config.timezone,
                name_case=config.name_case,
            )

        self._plain: list[tuple[str, Fn, Fn]] = []
        self._paths: list[tuple[FieldPath, FieldNormalizer]] = []
        identifiers = {id_type: build(kind) for id_type, kind in ALWAYS.items()}
        for name, kind in config.fields.items():
            path = FieldPath(name)
            if path.in_identifiers:
                identifiers[path.key] = build(kind)
            elif path.parts is None:
                normalizer = build(kind)
                self._plain.append((name, normalizer.text, normalizer.any))
            else:
                self._paths.append((path, build(kind)))
        # identifiers only ever hold text
        self._identifiers = [(id_type, fn.text) for id_type, fn in identifiers.items()]

    def process(self, batch: list[Record], ctx: TransformContext) -> list[Record]:
        mode = self.config.on_invalid
        plain, paths, id_rules = self._plain, self._paths, self._identifiers
        out: list[Record] = []
        append = out.append
        for record in batch:
            problems: list[str] | None = None
            data = record.data
            # The hot loop: top-level data keys, text values, one cached call each.
            for key, text, anything in plain:
                value = data.get(key, MISSING)
                if value is MISSING:
                    continue
                if value.__class__ is str:
                    result = text(value) if value and not value.isspace() else None
                else:
                    result = anything(value)
                if result.__class__ is Invalid:
                    if mode == "reject":
                        problems = (problems or []) + [f"{key}: {result.problem}"]
                    elif mode == "null":
                        data[key] = None
                else:
                    data[key] = result
            for path, fn in paths:
                value = path.get(record)
                if value is MISSING:
                    continue
                result = fn(value)
                if result.__class__ is Invalid:
                    if mode == "reject":
                        problems = (problems or []) + [f"{path.name}: {result.problem}"]
                    elif mode == "null":
                        path.set(record, None)
                else:
                    path.set(record, result)
            identifiers = record.identifiers
            if identifiers:
                for id_type, text in id_rules:
                    value = identifiers.get(id_type)
                    if value is None:
                        continue
                    if isinstance(value, list):
                        problems = _normalize_list(identifiers, id_type, value, text, mode, problems)
                        continue
                    if not value or value.isspace():
                        del identifiers[id_type]  # blank: an identifier with no value identifies no one
                        continue
                    result = text(value)
                    if result.__class__ is Invalid:
                        if mode == "reject":
                            problems = (problems or []) + [f"identifiers.{id_type}: {result.problem}"]
                        elif mode == "null":
                            del identifiers[id_type]
                    else:
                        identifiers[id_type] = result
            if problems:
                ctx.reject(record, "; ".join(problems))
            else:
                append(record)
        return out


def _normalize_list(
    identifiers: dict[str, str | list[str]], id_type: str, values: list[str], text: Fn, mode: str, problems: list[str] | None
) -> list[str] | None:
    """Several values of one identifier type: each normalized as a single value would be; blanks dropped,
    duplicates after normalizing dropped (the first kept, order kept); no value left removes the type.
    An invalid value rejects the record (``reject``), is dropped (``null``) or kept as it is (``keep``)."""
    out: list[str] = []
    for index, value in enumerate(values):
        if not isinstance(value, str) or not value or value.isspace():
            continue
        result = text(value)
        if result.__class__ is Invalid:
            if mode == "reject":
                problems = (problems or []) + [f"identifiers.{id_type}[{index}]: {result.problem}"]
            elif mode == "keep":
                out.append(value)
            continue
        out.append(result)
    kept = list(dict.fromkeys(out))
    if kept:
        identifiers[id_type] = kept
    else:
        del identifiers[id_type]
    return problems
