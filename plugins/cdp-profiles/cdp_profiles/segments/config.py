"""``[computed_traits.NAME]`` and ``[segments.NAME]`` in connectors.toml, and their check against the whole file.

Each section is a table of named tables::

    [computed_traits.revenue_365d]
    expression = "sum(orders.amount, days = 365)"

    [segments.repeat_buyers]
    where = "count(orders, days = 90) >= 2"
    description = "at least 2 orders in the last 90 days"

The models check each table's keys and the rule's syntax (with its column);
:func:`check_rules` (the ``cdp_validate_config`` hook) checks what needs the whole
file: names, functions, purposes (``[consent]``), other segments, cycles.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from cdp_core.base import PluginConfig
from cdp_core.config import Config
from cdp_core.transforms.expressions import ExpressionError, parse_expression
from pydantic import ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails

from cdp_profiles.segments.rules import RulesError, rules_from

Report = Callable[[tuple[str | int, ...], str], None]
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def _syntax(source: str) -> str:
    try:
        parse_expression(source)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from None
    return source


class ComputedTraitConfig(PluginConfig):
    """One computed trait: ``expression = "sum(orders.amount, days = 365)"``."""

    expression: str
    description: str = ""

    _check = field_validator("expression")(classmethod(lambda cls, value: _syntax(value)))


class SegmentConfig(PluginConfig):
    """One segment: ``where = "count(orders, days = 90) >= 2"``."""

    where: str
    description: str = ""

    _check = field_validator("where")(classmethod(lambda cls, value: _syntax(value)))


def _named(value: Any, item: type[PluginConfig], title: str) -> dict[str, Any]:
    """A table of NAME -> table, each validated by ``item``; errors keep their place (``NAME.where``)."""
    if not isinstance(value, dict):
        raise ValueError(f"must be a table of named tables ([{title}.NAME])")
    entries: dict[str, Any] = {}
    errors: list[InitErrorDetails] = []
    for name, table in value.items():
        if not isinstance(name, str) or not NAME.fullmatch(name):
            errors.append(InitErrorDetails(type="value_error", loc=(str(name),), input=name,
                ctx={"error": ValueError("names are a letter, then letters, digits or '_' (at most 64)")}))  # fmt: skip
            continue
        try:
            entries[name] = item.model_validate(table)
        except ValidationError as exc:
            for err in exc.errors():
                ctx = err.get("ctx")
                detail = InitErrorDetails(type=err["type"], loc=(name, *err["loc"]), input=err["input"])
                if ctx:
                    detail["ctx"] = ctx
                errors.append(detail)
    if errors:
        raise ValidationError.from_exception_data(title, errors)
    return entries


class ComputedTraitsConfig(PluginConfig):
    """The ``[computed_traits]`` section: a table of named computed traits."""

    traits: dict[str, ComputedTraitConfig] = {}

    @model_validator(mode="wrap")
    @classmethod
    def _table(cls, value: Any, handler: Any) -> Any:
        if isinstance(value, cls):
            return value
        return handler({"traits": _named(value, ComputedTraitConfig, "computed_traits")})


class SegmentsConfig(PluginConfig):
    """The ``[segments]`` section: a table of named segments."""

    segments: dict[str, SegmentConfig] = {}

    @model_validator(mode="wrap")
    @classmethod
    def _table(cls, value: Any, handler: Any) -> Any:
        if isinstance(value, cls):
            return value
        return handler({"segments": _named(value, SegmentConfig, "segments")})


def check_rules(config: Config, report: Report) -> None:
    """The ``cdp_validate_config`` check: every rule compiles (names, functions, cycles, purposes)."""
    try:
        rules_from(config)
    except RulesError as exc:
        for where, message in exc.problems:
            report(where, message)
