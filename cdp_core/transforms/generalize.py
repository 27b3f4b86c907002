"""Coarsening for privacy and analysis: ``generalize`` (k-anonymity style) and ``discretize`` (numeric bins).

Both write text labels ("25-34", "2024-05", "100-500") so the result groups
cleanly in segments and exports. A value that cannot be coarsened is rejected or
nulled, never passed through: passing it on would leak exactly what the
transform is there to hide.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from datetime import date, datetime
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from cdp_core.base import PluginConfig, Transform, TransformContext
from cdp_core.records import Record
from cdp_core.transforms.fields import MISSING, FieldName, FieldPath, Invalid, is_blank, show, today
from cdp_core.transforms.normalizers import as_datetime


def _increasing(values: list[Any], what: str) -> list[Any]:
    if any(b <= a for a, b in pairwise(values)):
        raise ValueError(f"{what} must be strictly increasing, got {values}")
    return values


class _Rule(PluginConfig):
    field: FieldName
    target: FieldName | None = Field(default=None, description="where to write the result (default: in place)")
    drop_source: bool = Field(default=False, description="remove 'field' once 'target' is written")

    @model_validator(mode="after")
    def _drop_needs_target(self) -> _Rule:
        if self.drop_source and (self.target is None or self.target == self.field):
            raise ValueError("drop_source needs a target other than the field itself")
        return self


class AgeRule(_Rule):
    """A birth date -> an age band such as "25-34"."""

    kind: Literal["age"]
    bands: list[Annotated[int, Field(ge=0, le=150)]] = Field(
        default_factory=lambda: [18, 25, 35, 45, 55, 65],
        min_length=1,
        description="lower bounds of the age bands: [18, 25] gives '<18', '18-24', '25+'",
    )

    @field_validator("bands")
    @classmethod
    def _bands_increase(cls, bands: list[int]) -> list[int]:
        return _increasing(bands, "bands")


class ZipRule(_Rule):
    """A postal code -> its first characters ("10115" -> "10")."""

    kind: Literal["zip"]
    digits: int = Field(ge=1, le=10, description="how many leading characters to keep")


class DateRule(_Rule):
    """A date or datetime -> a coarser period ("2024-05-17T09:00:00Z" -> "2024-05")."""

    kind: Literal["date"]
    to: Literal["year", "quarter", "month", "week", "day"] = Field(
        description="year '2024', quarter '2024-Q2', month '2024-05', ISO week '2024-W20', day '2024-05-17'"
    )


Rule = Annotated[AgeRule | ZipRule | DateRule, Field(discriminator="kind")]


class GeneralizeConfig(PluginConfig):
    rules: list[Rule] = Field(min_length=1, description="applied in order; each has kind = 'age' | 'zip' | 'date'")
    as_of: date | None = Field(default=None, description="the day ages are computed at (default: today, UTC)")
    dayfirst: bool = Field(default=True, description="read 01.02.1990 as 1 February")
    on_invalid: Literal["reject", "null"] = Field(
        default="reject", description="a value that cannot be coarsened: 'reject' the record or write 'null'"
    )


def age_labels(bands: list[int]) -> list[str]:
    """Labels of the bands, index 0 the open lower end: [18, 25] -> ['<18', '18-24', '25+']."""
    labels = [f"<{bands[0]}"]
    labels += [f"{low}-{high - 1}" for low, high in pairwise(bands)]
    return labels + [f"{bands[-1]}+"]


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _period(moment: datetime, to: str) -> str:
    if to == "year":
        return f"{moment.year:04d}"
    if to == "quarter":
        return f"{moment.year:04d}-Q{(moment.month - 1) // 3 + 1}"
    if to == "month":
        return f"{moment.year:04d}-{moment.month:02d}"
    if to == "week":
        year, week, _ = moment.isocalendar()
        return f"{year:04d}-W{week:02d}"
    return moment.date().isoformat()


Coarsen = Callable[[Any, date], Any]


def _compile(rule: AgeRule | ZipRule | DateRule, dayfirst: bool) -> Coarsen:
    if isinstance(rule, ZipRule):
        digits = rule.digits

        def zip_prefix(value: Any, day: date) -> Any:
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                return Invalid(f"expected a postal code, got {show(value)}")
            return value.replace(" ", "").strip()[:digits]

        return zip_prefix
    if isinstance(rule, DateRule):
        to = rule.to

        def period(value: Any, day: date) -> Any:
            moment = as_datetime(value, dayfirst)
            return moment if isinstance(moment, Invalid) or moment is None else _period(moment, to)

        return period
    bands, labels = rule.bands, age_labels(rule.bands)

    def band(value: Any, day: date) -> Any:
        moment = as_datetime(value, dayfirst)
        if isinstance(moment, Invalid) or moment is None:
            return moment
        years = age_on(moment.date(), day)
        if years < 0:
            return Invalid(f"birth date {moment.date().isoformat()} is after {day.isoformat()}")
        return labels[bisect_right(bands, years)]

    return band


class Generalize(Transform):
    """Coarsens quasi-identifiers: birth date -> age band, postal code -> prefix, date -> month/week/..."""

    config_model = GeneralizeConfig
    config: GeneralizeConfig

    def __init__(self, config: GeneralizeConfig) -> None:
        super().__init__(config)
        self._rules = [
            (FieldPath(r.field), FieldPath(r.target or r.field), r.drop_source, _compile(r, config.dayfirst))
            for r in config.rules
        ]

    def process(self, batch: list[Record], ctx: TransformContext) -> list[Record]:
        day = today(self.config.as_of)  # once per batch: every record of a batch is coarsened alike
        reject = self.config.on_invalid == "reject"
        out: list[Record] = []
        for record in batch:
            problems: list[str] = []
            for source, target, drop, coarsen in self._rules:
                value = source.get(record)
                if is_blank(value):
                    continue
                result = coarsen(value, day)
                if isinstance(result, Invalid):
                    if reject:
                        problems.append(f"{source.name}: {result.problem}")
                        continue
                    result = None
                target.set(record, result)
                if drop:
                    source.pop(record)
            if problems:
                ctx.reject(record, "; ".join(problems))
            else:
                out.append(record)
        return out


# -- discretize -----------------------------------------------------------------------------


def _fmt(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else repr(bound)


class DiscretizeConfig(PluginConfig):
    field: FieldName = Field(description="the numeric field (numbers written as text count)")
    bins: list[float] = Field(
        min_length=1, description="bin edges, lower bound inclusive: [0, 50] gives '<0', '0-50', '50+'"
    )
    labels: list[str] | None = Field(
        default=None, description="one label per bin: len(bins) + 1, the open ends included"
    )
    target: FieldName | None = Field(default=None, description="where to write the label (default: in place)")

    @field_validator("bins")
    @classmethod
    def _edges(cls, bins: list[float]) -> list[float]:
        if not all(math.isfinite(b) for b in bins):
            raise ValueError("bins must be finite numbers")
        return _increasing(bins, "bins")

    @model_validator(mode="after")
    def _label_count(self) -> DiscretizeConfig:
        if self.labels is not None and len(self.labels) != len(self.bins) + 1:
            raise ValueError(
                f"labels: {len(self.bins)} bins need {len(self.bins) + 1} labels (both open ends included), "
                f"got {len(self.labels)}"
            )
        return self

    def default_labels(self) -> list[str]:
        edges = [_fmt(b) for b in self.bins]
        return [f"<{edges[0]}", *(f"{a}-{b}" for a, b in pairwise(edges)), f"{edges[-1]}+"]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


class Discretize(Transform):
    """Puts a number into a bin and writes the bin's label; a value that is not a number is rejected."""

    config_model = DiscretizeConfig
    config: DiscretizeConfig

    def __init__(self, config: DiscretizeConfig) -> None:
        super().__init__(config)
        self._source = FieldPath(config.field)
        self._target = FieldPath(config.target or config.field)
        self._labels = config.labels or config.default_labels()

    def process(self, batch: list[Record], ctx: TransformContext) -> list[Record]:
        source, target, bins, labels = self._source, self._target, self.config.bins, self._labels
        out: list[Record] = []
        for record in batch:
            value = source.get(record)
            if value is not MISSING and not is_blank(value):
                number = _number(value)
                if number is None:
                    ctx.reject(record, f"{source.name}: not a number: {show(value)}")
                    continue
                target.set(record, labels[bisect_right(bins, number)])
            out.append(record)
        return out
