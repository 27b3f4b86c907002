"""A graph's schedule as an APScheduler trigger, with standard cron semantics, and its slot arithmetic.

Why not ``CronTrigger.from_crontab`` as is: APScheduler 3 numbers weekdays from
0 = Monday, while cron (and everyone who writes ``1-5``) means 0 = Sunday, and it
ANDs a restricted day-of-month with a restricted day-of-week where cron ORs them.
:func:`build_trigger` translates the weekday field to names and builds an
``OrTrigger`` for the OR case, so the next run times are the ones cron would give.

``every = "10m"`` slots are aligned to the interval, counted from 2000-01-01
00:00 in the graph's time zone (10m fires at :00, :10, ...; 1d at midnight of
standard time). Every scheduler process therefore has the same slots, which is
what lets a slot that one process already served be recognised by the others.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable
from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from cdp_core.config import GraphConfig
from cdp_core.graph import parse_every

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_NUMBER = {name: i for i, name in enumerate(_DAY_NAMES)}
_PART = re.compile(r"^(?P<base>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>\d+))?$")
# How far back latest_slot() looks, growing: dense schedules are found in the first window.
_LOOKBACK = tuple(
    timedelta(seconds=s) for s in (2, 60, 3600, 86400, 8 * 86400, 32 * 86400, 367 * 86400, 1470 * 86400, 3000 * 86400)
)


def anchor(timezone: str) -> datetime:
    """Where ``every`` slots are counted from: 2000-01-01 00:00 in the graph's time zone."""
    return datetime(2000, 1, 1, tzinfo=zoneinfo.ZoneInfo(timezone))


def build_trigger(config: GraphConfig) -> BaseTrigger | None:
    """The trigger of a graph's ``schedule`` or ``every``; None for a graph without one."""
    zone = zoneinfo.ZoneInfo(config.timezone)
    if config.schedule:
        return cron_trigger(config.schedule, zone)
    if config.every:
        interval = parse_every(config.every)
        return IntervalTrigger(seconds=interval.total_seconds(), start_date=anchor(config.timezone), timezone=zone)
    return None


def cron_trigger(expression: str, zone: zoneinfo.ZoneInfo) -> BaseTrigger:
    """A 5-field crontab expression with cron's own meaning (see the module docstring)."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"a cron expression has 5 fields, got {len(fields)}: {expression!r}")
    minute, hour, day, month, weekdays = fields
    day_of_week = cron_weekdays(weekdays)

    def make(day: str, day_of_week: str) -> CronTrigger:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=day_of_week, timezone=zone)

    if not day.startswith("*") and not weekdays.startswith("*"):
        # cron: "1 * * * 1" runs on the 1st of the month AND on every Monday
        return OrTrigger([make(day, "*"), make("*", day_of_week)])
    return make(day, day_of_week)


def cron_weekdays(field: str) -> str:
    """A cron weekday field (0 or 7 = Sunday, names, ranges, steps) as APScheduler's weekday names."""
    days: set[int] = set()
    for part in field.lower().split(","):
        match = _PART.match(part)
        if not match:
            raise ValueError(f"not a weekday field: {field!r}")
        base, step = match.group("base"), int(match.group("step") or 1)
        if step < 1:
            raise ValueError(f"a step must be 1 or more: {field!r}")
        if base == "*":
            first, last = 0, 6
        else:
            low, _, high = base.partition("-")
            first = _weekday(low, field)
            last = _weekday(high, field) if high else (6 if match.group("step") else first)
            if last < first:
                raise ValueError(f"a weekday range must go upwards: {field!r}")
        days.update(d % 7 for d in range(first, last + 1, step))
    if days == set(range(7)):
        return "*"
    return ",".join(_DAY_NAMES[d] for d in sorted(days))


def _weekday(token: str, field: str) -> int:
    """0-7 as written (7 stays 7 so that ``5-7`` is Friday to Sunday), names as 0-6."""
    if token.isdigit():
        number = int(token)
        if not 0 <= number <= 7:
            raise ValueError(f"a weekday is 0-7 (0 and 7: Sunday): {field!r}")
        return number
    if token in _DAY_NUMBER:
        return _DAY_NUMBER[token]
    raise ValueError(f"not a weekday: {token!r} in {field!r}")


def next_fire(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The first slot at or after ``now``."""
    return trigger.get_next_fire_time(None, now)


def upcoming(trigger: BaseTrigger, now: datetime, count: int) -> list[datetime]:
    """The next ``count`` slots from ``now``."""
    times: list[datetime] = []
    fire = next_fire(trigger, now)
    while fire is not None and len(times) < count:
        times.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)
    return times


def latest_slot(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The last slot at or before ``now`` (None if there is none within about eight years)."""
    for window in _LOOKBACK:
        fire = next_fire(trigger, now - window)
        if fire is None or fire > now:
            continue
        while True:
            following = trigger.get_next_fire_time(fire, fire)
            if following is None or following > now:
                return fire
            fire = following
    return None


def missed_slot(trigger: BaseTrigger, last_success_start: datetime | None, now: datetime) -> datetime | None:
    """The slot to catch up at start, if any: the latest slot at or before ``now`` when the
    last successful run started before it (or there never was one). Only the latest: a
    scheduler that was down for ten slots runs once, not ten times."""
    slot = latest_slot(trigger, now)
    if slot is None:
        return None
    if last_success_start is None or last_success_start < slot:
        return slot
    return None


def describe(config: GraphConfig) -> str:
    """``cron 0 2 * * * (Europe/Berlin)``, ``every 10m (UTC)``, ``after a, b`` or ``manual``."""
    if config.schedule:
        return f"cron {config.schedule} ({config.timezone})"
    if config.every:
        return f"every {config.every} ({config.timezone})"
    if config.depends_on:
        return "after " + ", ".join(config.depends_on)
    return "manual"


def dependents(configs: Iterable[tuple[str, GraphConfig]], name: str) -> list[str]:
    """The graphs whose ``depends_on`` names ``name``."""
    return [other for other, config in configs if name in config.depends_on]
