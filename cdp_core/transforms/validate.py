"""``validate``: required fields and value types; a failing record goes to quarantine naming every problem."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, model_validator

from cdp_core.base import PluginConfig, Transform, TransformContext
from cdp_core.records import Record, RecordKind
from cdp_core.transforms import normalizers
from cdp_core.transforms.fields import FieldName, FieldPath, Invalid, is_blank, show

TypeName = Literal["str", "int", "float", "bool", "email", "date", "datetime", "list", "dict"]

_TRUE = frozenset({"true", "yes", "1", "on", "y", "t"})
_FALSE = frozenset({"false", "no", "0", "off", "n", "f"})


def _expected(what: str, value: Any) -> Invalid:
    return Invalid(f"expected {what}, got {show(value)}")


def _check_str(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):  # a number where text is expected is still usable text
        return _expected("str", value) if isinstance(value, bool) else str(value)
    return _expected("str", value)


def _check_int(value: Any) -> Any:
    if isinstance(value, bool):
        return _expected("int", value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return _expected("int", value)
        if number.is_integer():
            return int(number)
    return _expected("int", value)


def _check_float(value: Any) -> Any:
    if isinstance(value, bool):
        return _expected("float", value)
    number: float | None = None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        return _expected("float", value)
    return number


def _check_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return _expected("bool (true/false, yes/no, 1/0)", value)


def _check_email(value: Any) -> Any:
    return normalizers.email(value) if isinstance(value, str) else _expected("an email address", value)


def _checkers(dayfirst: bool) -> dict[str, Callable[[Any], Any]]:
    to_date = normalizers.build("date", dayfirst=dayfirst)
    to_datetime = normalizers.build("datetime", dayfirst=dayfirst)
    return {
        "str": _check_str,
        "int": _check_int,
        "float": _check_float,
        "bool": _check_bool,
        "email": _check_email,
        "date": to_date,
        "datetime": to_datetime,
        "list": lambda v: v if isinstance(v, list) else _expected("list", v),
        "dict": lambda v: v if isinstance(v, dict) else _expected("dict", v),
    }


class ValidateConfig(PluginConfig):
    required: list[FieldName] = Field(
        default_factory=list, description="fields that must be present and not blank (empty text counts as blank)"
    )
    types: dict[FieldName, TypeName] = Field(
        default_factory=dict,
        description="field -> str | int | float | bool | email | date | datetime | list | dict "
        "(text holding the value counts: '42' is an int); blank values are only checked by 'required'",
    )
    kinds: list[RecordKind] | None = Field(
        default=None, min_length=1, description="validate only records of these kinds; others pass unchecked"
    )
    coerce: bool = Field(
        default=False, description="replace valid values with their typed form ('42' -> 42, dates -> 'YYYY-MM-DD')"
    )
    dayfirst: bool = Field(default=True, description="read 01.02.2024 as 1 February")

    @model_validator(mode="after")
    def _something_to_check(self) -> ValidateConfig:
        if not self.required and not self.types:
            raise ValueError("set 'required' and/or 'types': there is nothing to validate")
        return self


class Validate(Transform):
    """Rejects records that miss a required field or hold a value of the wrong type."""

    config_model = ValidateConfig
    config: ValidateConfig

    def __init__(self, config: ValidateConfig) -> None:
        super().__init__(config)
        checkers = _checkers(config.dayfirst)
        self._required = [FieldPath(name) for name in config.required]
        self._types = [(FieldPath(name), kind, checkers[kind]) for name, kind in config.types.items()]
        self._kinds = frozenset(config.kinds) if config.kinds else None

    def process(self, batch: list[Record], ctx: TransformContext) -> list[Record]:
        kinds, coerce = self._kinds, self.config.coerce
        out: list[Record] = []
        for record in batch:
            if kinds is not None and record.kind not in kinds:
                out.append(record)
                continue
            problems = [f"{path.name}: required" for path in self._required if is_blank(path.get(record))]
            fixes: list[tuple[FieldPath, Any]] = []
            for path, kind, check in self._types:
                value = path.get(record)
                if is_blank(value):  # a required one is already reported
                    continue
                result = check(value)
                if isinstance(result, Invalid):
                    problems.append(f"{path.name}: {result.problem}")
                elif coerce:
                    fixes.append((path, result))
            if problems:
                ctx.reject(record, "; ".join(problems))
                continue
            for path, value in fixes:  # only once the whole record passed, so a reject keeps the input
                path.set(record, value)
            out.append(record)
        return out
