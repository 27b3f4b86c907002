"""An NPS report: the figures `cdp nps` shows (:func:`report`), what the HTML page adds (:func:`with_details`).

The page itself is :func:`cdp_profiles.nps_page.render` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from cdp_profiles.nps import (
    LOW_N,
    NONE_LABEL,
    Filters,
    NpsFigure,
    NpsGroup,
    NpsPeriod,
    Period,
    by_trait,
    span,
    summary,
    trend,
)
from cdp_profiles.nps_format import points
from cdp_profiles.nps_segments import SegmentSplit, segment_splits
from cdp_profiles.nps_smoothing import Smoothed, Smoothing, smooth


@dataclass
class NpsReport:
    filters: Filters
    summary: NpsFigure
    breakdowns: dict[str, list[NpsGroup]] = field(default_factory=dict)
    period: Period | None = None
    trend: list[NpsPeriod] = field(default_factory=list)
    unknown_traits: list[str] = field(default_factory=list)
    """Traits asked for that no answering profile has."""
    surveys: list[str] = field(default_factory=list)
    """The surveys of the counted answers."""
    first_answer: datetime | None = None
    last_answer: datetime | None = None
    smoothing: Smoothing | None = None
    smoothed: list[Smoothed] = field(default_factory=list)
    """One per trend period when ``smoothing`` is set."""
    drivers: list[dict[str, Any]] | None = None
    """``Driver.to_dict()`` rows, ranked by effect (None: not asked for)."""
    verbatims: dict[str, Any] | None = None
    """``Verbatims.to_dict()``: per category its comment count, top terms and examples (None: not asked for)."""
    segments: list[SegmentSplit] | None = None
    """NPS in vs out of each configured segment (None: not asked for)."""

    def warnings(self) -> list[str]:
        """One line per figure with fewer than LOW_N answers (figures without any answers aside)."""
        out = []
        if self.summary.low_n and self.summary.n:
            out.append(f"all answers: {_few(self.summary)}")
        for trait, groups in self.breakdowns.items():
            out.extend(f"{trait} = {g.label}: {_few(g.figure)}" for g in groups if g.figure.low_n and g.figure.n)
        out.extend(f"{p.period}: {_few(p.figure)}" for p in self.trend if p.figure.low_n and p.figure.n)
        out.extend(
            f"no answering profile has a trait {t!r}: all answers are under {NONE_LABEL}" for t in self.unknown_traits
        )
        return out

    def trend_dicts(self) -> list[dict[str, Any]]:
        rows = [p.to_dict() for p in self.trend]
        if self.smoothing is not None:
            for row, s in zip(rows, self.smoothed, strict=True):
                row["smoothed_nps"] = None if s.nps is None else round(s.nps, 2)
                row["smoothed_n"] = round(s.n, 2)
        return rows

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "filters": self.filters.to_dict(),
            "surveys": self.surveys,
            "first_answer": self.first_answer.isoformat() if self.first_answer else None,
            "last_answer": self.last_answer.isoformat() if self.last_answer else None,
            "summary": self.summary.to_dict(),
            "by": {trait: [g.to_dict() for g in groups] for trait, groups in self.breakdowns.items()},
            "period": self.period,
            "smoothing": self.smoothing.to_dict() if self.smoothing else None,
            "trend": self.trend_dicts(),
            "warnings": self.warnings(),
        }
        if self.segments is not None:
            out["segments"] = [s.to_dict() for s in self.segments]
        if self.drivers is not None:
            out["drivers"] = self.drivers
        if self.verbatims is not None:
            out["verbatims"] = self.verbatims
        return out


def _few(figure: NpsFigure) -> str:
    answers = "answer" if figure.n == 1 else "answers"
    moe = figure.margin_of_error or 0.0
    return (
        f"only {figure.n} {answers} (fewer than {LOW_N}), NPS {points(figure.nps)} ± {moe:.1f} points is not reliable"
    )


def report(
    engine: Engine,
    filters: Filters | None = None,
    by: Sequence[str] = (),
    period: Period | None = None,
    *,
    smoothing: Smoothing | None = None,
) -> NpsReport:
    """Summary, breakdowns by each trait in ``by`` and the trend per ``period`` (if any, smoothed if asked),
    for the same answers, with the surveys and the time span they cover."""
    filters = filters or Filters()
    kwargs = filters.kwargs()
    surveys, first, last = span(engine, filters)
    result = NpsReport(
        filters=filters, summary=summary(engine, **kwargs), surveys=surveys, first_answer=first, last_answer=last
    )
    for trait in dict.fromkeys(by):
        groups = by_trait(engine, trait, **kwargs)
        result.breakdowns[trait] = groups
        if result.summary.n and all(g.value is None for g in groups):
            result.unknown_traits.append(trait)
    return with_trend(result, engine, period, smoothing) if period is not None else replace(result, smoothing=smoothing)


def with_trend(result: NpsReport, engine: Engine, period: Period, smoothing: Smoothing | None = None) -> NpsReport:
    """``result`` with the trend per ``period`` of its answers (and its smoothed NPS when ``smoothing`` is set)."""
    periods = trend(engine, period, **result.filters.kwargs())
    smoothed = smooth(periods, smoothing) if smoothing is not None else []
    return replace(result, period=period, trend=periods, smoothing=smoothing, smoothed=smoothed)


def with_details(
    result: NpsReport, engine: Engine, config: Any, now: datetime, *, min_n: int | None = None
) -> NpsReport:
    """``result`` with what the HTML page adds: the drivers, the verbatims per category and the NPS in vs
    out of every configured segment (``config``: the loaded config; ``now``: when segments are evaluated;
    ``min_n``: the fewest answers in a driver's group and in its rest, default ``nps_drivers.MIN_N``)."""
    from cdp_profiles.membership.engine import rules_of
    from cdp_profiles.nps_drivers import MIN_N, drivers
    from cdp_profiles.nps_verbatims import verbatims

    rules = rules_of(config)
    return replace(
        result,
        segments=segment_splits(engine, rules, result.filters, now, result.summary),
        drivers=[d.to_dict() for d in drivers(engine, config, result.filters, min_n=min_n or MIN_N)],
        verbatims=verbatims(engine, result.filters).to_dict(),
    )


def describe(report: NpsReport) -> str:
    f = report.filters
    parts = ["every answer counts" if not f.latest_per_person else "each person's latest answer only"]
    if f.since or f.until:
        parts.append(f"answered {f.since.isoformat() if f.since else '…'} to {f.until.isoformat() if f.until else '…'}")
    if f.survey:
        parts.append(f"survey {f.survey}")
    if f.segment:
        parts.append(f"segment {f.segment}")
    return "; ".join(parts)


def render(report: NpsReport, title: str = "Net Promoter Score") -> str:
    """The whole HTML page for ``report`` (see :func:`cdp_profiles.nps_page.render`)."""
    from cdp_profiles.nps_page import render as page

    return page(report, title)
