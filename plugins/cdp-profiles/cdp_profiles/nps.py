"""Net Promoter Score from the profile store (docs/nps.md).

Every stored answer counts by default (each answer is one response, as survey
tools count them); ``latest_per_person=True`` keeps only each person's latest
answer. A person is the *live* profile the answer's record resolved to:
``nps_responses (stream, key) -> record_index`` -> its person
(cdp_profiles/store/owners.py) ``-> profiles`` (following ``merged_into``).

The work is set-based: one aggregate query per figure, breakdown or trend; the
trend is aggregated per day in SQL and bucketed into ISO weeks or months in
Python, which reads the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from cdp_core import timeutil
from sqlalchemy import Engine, and_, case, func, select
from sqlalchemy.sql import ColumnElement, Subquery

from cdp_profiles import nps_stats
from cdp_profiles.store import tables
from cdp_profiles.store.kinds import nps_category
from cdp_profiles.store.owners import owner_of, with_sets
from cdp_profiles.store.trait_docs import value_json

LOW_N = 30
"""Below this many answers a figure is flagged ``low_n``: its margin of error is wide."""
Z95 = nps_stats.Z95
Period = Literal["week", "month"]
NONE_LABEL = "(none)"

_nps, _index, _profiles = tables.nps_responses, tables.record_index, tables.profiles


class NpsError(ValueError):
    """A question about NPS that cannot be answered as asked."""


def category(score: int) -> str:
    """``promoter`` (9-10), ``passive`` (7-8) or ``detractor`` (0-6)."""
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise ValueError(f"an NPS score is a whole number from 0 to 10, got {score!r}")
    return nps_category(score)


@dataclass(frozen=True)
class NpsFigure:
    """One NPS with what stands behind it. Percentages and NPS are in points (0-100 / -100..100)."""

    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    @classmethod
    def from_scores(cls, scores: Iterable[int]) -> NpsFigure:
        counts = {"promoter": 0, "passive": 0, "detractor": 0}
        for score in scores:
            counts[category(score)] += 1
        return cls(counts["promoter"], counts["passive"], counts["detractor"])

    def __add__(self, other: NpsFigure) -> NpsFigure:
        return NpsFigure(
            self.promoters + other.promoters, self.passives + other.passives, self.detractors + other.detractors
        )

    @property
    def n(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def pct_promoters(self) -> float | None:
        return 100 * self.promoters / self.n if self.n else None

    @property
    def pct_passives(self) -> float | None:
        return 100 * self.passives / self.n if self.n else None

    @property
    def pct_detractors(self) -> float | None:
        return 100 * self.detractors / self.n if self.n else None

    @property
    def nps(self) -> float | None:
        """% promoters - % detractors; None without answers."""
        return 100 * (self.promoters - self.detractors) / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95 % interval of the NPS in points, clamped to [-100, 100]; None without answers.

        The adjusted Wald interval (Rocks 2016, :mod:`cdp_profiles.nps_stats`): 3/4 of a promoter,
        3/2 of a passive and 3/4 of a detractor added to the counts, then the Wald interval of
        the adjusted shares. It is centred on the adjusted score, a little toward 0 from the NPS.
        """
        shares = nps_stats.interval(self.promoters, self.passives, self.detractors, Z95)
        return None if shares is None else (100 * shares[0], 100 * shares[1])

    @property
    def margin_of_error(self) -> float | None:
        """Half the width of :attr:`interval`, in points: above 0 for any n > 0, at most 100."""
        bounds = self.interval
        return None if bounds is None else (bounds[1] - bounds[0]) / 2

    @property
    def low_n(self) -> bool:
        return self.n < LOW_N

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 2)

        return {
            "n": self.n,
            "promoters": self.promoters,
            "passives": self.passives,
            "detractors": self.detractors,
            "pct_promoters": r(self.pct_promoters),
            "pct_passives": r(self.pct_passives),
            "pct_detractors": r(self.pct_detractors),
            "nps": r(self.nps),
            "margin_of_error": r(self.margin_of_error),
            "ci_low": r(self.interval[0]) if self.interval else None,
            "ci_high": r(self.interval[1]) if self.interval else None,
            "low_n": self.low_n,
        }


@dataclass(frozen=True)
class NpsGroup:
    """The NPS of the answers whose profile has ``value`` for a trait (None: no value)."""

    value: Any
    figure: NpsFigure

    @property
    def label(self) -> str:
        if self.value is None:
            return NONE_LABEL
        return self.value if isinstance(self.value, str) else json.dumps(self.value, ensure_ascii=False)

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, **self.figure.to_dict()}


@dataclass(frozen=True)
class NpsPeriod:
    """The NPS of one ISO week (``2024-W05``) or month (``2024-05``); periods without answers have n = 0."""

    period: str
    start: date
    figure: NpsFigure

    def to_dict(self) -> dict[str, Any]:
        return {"period": self.period, "start": self.start.isoformat(), **self.figure.to_dict()}


@dataclass(frozen=True)
class Filters:
    """Which answers count. ``since``/``until`` are inclusive; a date ``until`` covers that whole day (UTC)."""

    since: date | datetime | None = None
    until: date | datetime | None = None
    survey: str | None = None
    latest_per_person: bool = False
    segment: str | None = None
    """Only answers of the people in this segment (named for reports; ``members`` selects them)."""
    members: Any = field(default=None, compare=False)
    """A ``SELECT profile_id`` of the people whose answers count (the segment's members); None: everyone."""

    def conditions(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.since is not None:
            out.append(_nps.c.answered_at >= as_utc(self.since))
        if self.until is not None:
            if isinstance(self.until, datetime):
                out.append(_nps.c.answered_at <= as_utc(self.until))
            else:
                out.append(_nps.c.answered_at < as_utc(self.until + timedelta(days=1)))
        if self.survey is not None:
            out.append(_nps.c.survey == self.survey)
        return out

    def kwargs(self) -> dict[str, Any]:
        """As keyword arguments of summary, by_trait and trend."""
        return {
            "since": self.since,
            "until": self.until,
            "survey": self.survey,
            "latest_per_person": self.latest_per_person,
            "members": self.members,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "survey": self.survey,
            "latest_per_person": self.latest_per_person,
            "segment": self.segment,
        }


def as_utc(value: date | datetime) -> datetime:
    """A bound for ``answered_at`` (stored in UTC): a date is its midnight UTC, a naive time is taken as UTC."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), UTC)
    return timeutil.as_utc(value)


# -- queries ---------------------------------------------------------------------------


def _answers(filters: Filters, *, person: bool, comment: bool = False) -> Subquery:
    """One row per counted answer: ``score``, ``answered_at``, ``survey``, if ``comment`` the ``comment`` and, if
    ``person``, the live ``profile_id``."""
    n = _nps
    columns: list[ColumnElement[Any]] = [n.c.score, n.c.answered_at, n.c.survey]
    if comment:
        columns.append(n.c.comment)
    source: Any = n
    if person or filters.latest_per_person or filters.members is not None:
        source = with_sets(n.outerjoin(_index, and_(_index.c.stream == n.c.stream, _index.c.key == n.c.key)))
        source = source.outerjoin(_profiles, _profiles.c.id == owner_of())
        columns.append(func.coalesce(_profiles.c.merged_into, _profiles.c.id).label("profile_id"))
    stmt = select(*columns).select_from(source).where(*filters.conditions())
    if filters.members is not None:
        stmt = stmt.where(func.coalesce(_profiles.c.merged_into, _profiles.c.id).in_(filters.members))
    if not filters.latest_per_person:
        return stmt.subquery("answers")
    # The latest answer per person, as the nps_score trait picks it: by time (undated oldest), then stream, key.
    who = func.coalesce(_profiles.c.merged_into, _profiles.c.id, n.c.stream.concat("|").concat(n.c.key))
    rank = func.row_number().over(
        partition_by=who,
        order_by=(
            case((n.c.answered_at.is_(None), 1), else_=0),
            n.c.answered_at.desc(),
            n.c.stream.desc(),
            n.c.key.desc(),
        ),
    )
    ranked = stmt.add_columns(rank.label("rank")).subquery("ranked")
    kept = [ranked.c.score, ranked.c.answered_at, ranked.c.survey, ranked.c.profile_id]
    kept += [ranked.c.comment] if comment else []
    return select(*kept).where(ranked.c.rank == 1).subquery("answers")


def span(engine: Engine, filters: Filters) -> tuple[list[str], datetime | None, datetime | None]:
    """The surveys of the counted answers (sorted; answers without one aside) and their first and last time."""
    answers = _answers(filters, person=False)
    with engine.connect() as conn:
        surveys = conn.execute(
            select(answers.c.survey).where(answers.c.survey.is_not(None)).distinct().order_by(answers.c.survey)
        )
        names = [str(row.survey) for row in surveys]
        first, last = conn.execute(select(func.min(answers.c.answered_at), func.max(answers.c.answered_at))).one()
    return names, _moment(first), _moment(last)


def _moment(value: Any) -> datetime | None:
    """A time read back from the store: aware UTC (SQLite returns it naive, sometimes as text)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value))
    return timeutil.as_utc(value)


def _counts(score: ColumnElement[int]) -> list[ColumnElement[Any]]:
    return [
        func.coalesce(func.sum(case((score >= 9, 1), else_=0)), 0).label("promoters"),
        func.coalesce(func.sum(case((and_(score >= 7, score <= 8), 1), else_=0)), 0).label("passives"),
        func.coalesce(func.sum(case((score <= 6, 1), else_=0)), 0).label("detractors"),
    ]


def _figure(row: Any) -> NpsFigure:
    return NpsFigure(int(row.promoters or 0), int(row.passives or 0), int(row.detractors or 0))


def summary(
    engine: Engine,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    survey: str | None = None,
    *,
    latest_per_person: bool = False,
    members: Any = None,
) -> NpsFigure:
    """The NPS of every counted answer."""
    answers = _answers(Filters(since, until, survey, latest_per_person, members=members), person=False)
    with engine.connect() as conn:
        return _figure(conn.execute(select(*_counts(answers.c.score))).one())


def by_trait(
    engine: Engine,
    trait: str,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    survey: str | None = None,
    *,
    latest_per_person: bool = False,
    members: Any = None,
) -> list[NpsGroup]:
    """NPS per current value of ``trait`` on the answering person's live profile; no value: ``value`` None.

    Largest groups first, the group without a value last.
    """
    answers = _answers(Filters(since, until, survey, latest_per_person, members=members), person=True)
    per_person = select(answers.c.profile_id, *_counts(answers.c.score)).group_by(answers.c.profile_id)
    # Two plain scans merged here rather than one join: a join of the ranked answers with the profiles can
    # get a nested-loop plan on PostgreSQL when statistics lag behind a fresh sync (minutes for 100,000 answers).
    # The trait's value is picked out of each live profile's document in SQL, as JSON text (JSON has no
    # equality operator on PostgreSQL), and parsed here.
    merged: dict[str, tuple[Any, NpsFigure]] = {}
    with engine.connect() as conn:
        value = value_json(_profiles.c.traits, trait, conn.dialect.name)
        live = _profiles.c.merged_into.is_(None)  # answers count for the live profile they resolved to
        values = select(_profiles.c.id, value.label("value")).where(live, value.is_not(None))
        value_of = {row.id: row.value for row in conn.execute(values)}
        for row in conn.execute(per_person):
            parsed = _parse_json(value_of.get(row.profile_id))
            key = json.dumps(parsed, sort_keys=True)  # the same value written with other spacing is one group
            known = merged.get(key)
            merged[key] = (parsed, _figure(row) + known[1] if known else _figure(row))
    groups = [NpsGroup(v, f) for v, f in merged.values()]
    return sorted(groups, key=lambda g: (g.value is None, -g.figure.n, g.label))


def _parse_json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def trend(
    engine: Engine,
    period: Period = "month",
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    survey: str | None = None,
    *,
    latest_per_person: bool = False,
    members: Any = None,
) -> list[NpsPeriod]:
    """NPS per ISO week or calendar month (UTC) of ``answered_at``, oldest first, gaps filled with n = 0.

    Answers without a date are left out of the trend (they still count in summary and by_trait).
    """
    if period not in ("week", "month"):
        raise NpsError(f"period must be 'week' or 'month', got {period!r}")
    answers = _answers(Filters(since, until, survey, latest_per_person, members=members), person=False)
    when = answers.c.answered_at
    # The UTC calendar day; on PostgreSQL a timestamptz's date() would follow the session's time zone.
    day = func.date(func.timezone("UTC", when) if engine.dialect.name == "postgresql" else when).label("day")
    stmt = select(day, *_counts(answers.c.score)).where(answers.c.answered_at.is_not(None)).group_by(day)
    buckets: dict[date, NpsFigure] = {}
    with engine.connect() as conn:
        for row in conn.execute(stmt):
            start = _period_start(_as_date(row.day), period)
            buckets[start] = buckets.get(start, NpsFigure()) + _figure(row)
    if not buckets:
        return []
    out = []
    current, last = min(buckets), max(buckets)
    while current <= last:
        out.append(NpsPeriod(period_label(current, period), current, buckets.get(current, NpsFigure())))
        current = _next_period(current, period)
    return out


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _period_start(day: date, period: Period) -> date:
    return day - timedelta(days=day.weekday()) if period == "week" else day.replace(day=1)


def _next_period(start: date, period: Period) -> date:
    if period == "week":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def period_label(start: date, period: Period) -> str:
    """``2024-W05`` (ISO week) or ``2024-05``."""
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{start.year:04d}-{start.month:02d}"
