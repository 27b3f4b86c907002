"""Expression-based transforms: ``filter`` keeps records, ``derive`` computes new fields.

Expressions are compiled when the transform is built (a bad one is a config
error, reported by ``cdp validate`` before anything runs), then evaluated per
record as plain closures; see :mod:`cdp_core.transforms.expressions`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from pydantic import Field, field_validator

from cdp_core.base import PluginConfig, Transform, TransformContext
from cdp_core.records import Record
from cdp_core.timeutil import aware
from cdp_core.transforms.expr_functions import truthy
from cdp_core.transforms.expressions import EvaluationError, ExpressionError, compile_expression
from cdp_core.transforms.fields import FieldName, FieldPath

AS_OF_HELP = "the moment now() and days_since() use (default: the current time); for tests and backfills"


def _clock(as_of: datetime | None) -> Callable[[], datetime] | None:
    if as_of is None:
        return None
    moment = aware(as_of)
    return lambda: moment


def _json_safe(value: object) -> object:
    """Derived values land in record data, which is stored and exported as JSON."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


class FilterConfig(PluginConfig):
    where: str = Field(
        description="keep the records for which this expression is true, e.g. \"country == 'DE' and age >= 18\""
    )
    as_of: datetime | None = Field(default=None, description=AS_OF_HELP)

    @field_validator("where")
    @classmethod
    def _compiles(cls, where: str) -> str:
        compile_expression(where)  # ExpressionError is a ValueError: pydantic reports it under 'where'
        return where


class Filter(Transform):
    """Keeps records where ``where`` is true; false or null drops them, an evaluation error rejects them."""

    config_model = FilterConfig
    config: FilterConfig

    def __init__(self, config: FilterConfig) -> None:
        super().__init__(config)
        self._where = compile_expression(config.where, _clock(config.as_of))

    def process(self, batch: list[Record], ctx: TransformContext) -> list[Record]:
        where = self._where
        out: list[Record] = []
        for record in batch:
            try:
                keep = truthy(where(record))
            except EvaluationError as exc:
                ctx.reject(record, f"where {where.source!r}: {exc}")
                continue
            if keep:
                out.append(record)
        return out


class DeriveConfig(PluginConfig):
    fields: dict[FieldName, str] = Field(
        min_length=1,
        description="new field -> expression, evaluated in order (a later one can use an earlier result)",
    )
    as_of: datetime | None = Field(default=None, description=AS_OF_HELP)

    @field_validator("fields")
    @classmethod
    def _compiles(cls, fields: dict[str, str]) -> dict[str, str]:
        problems = []
        for name, source in fields.items():
            try:
                compile_expression(source)
            except ExpressionError as exc:
                problems.append(f"{name}: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return fields


class Derive(Transform):
    """Adds (or overwrites) fields computed from expressions; an evaluation error rejects the record."""

    config_model = DeriveConfig
    config: DeriveConfig

    def __init__(self, config: DeriveConfig) -> None:
        super().__init__(config)
        clock = _clock(config.as_of)
        self._fields = [(FieldPath(name), compile_expression(source, clock)) for name, source in config.fields.items()]

    def process(self, batch: list[Record], ctx: TransformContext) -> list[Record]:
        out: list[Record] = []
        for record in batch:
            problems: list[str] = []
            for target, expression in self._fields:
                try:
                    value = expression(record)
                except EvaluationError as exc:
                    problems.append(f"{target.name}: {exc}")
                    continue
                target.set(record, _json_safe(value))
            if problems:
                ctx.reject(record, "; ".join(problems))
            else:
                out.append(record)
        return out
