"""Schedules: cron with cron's own meaning, aligned intervals, missed slots, backoff, and the config they come from.

Expected fire times are computed here independently of APScheduler: a minute-by-
minute walk that checks each field the way crontab(5) defines it.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_scheduler_kit import load, ticks_graph

from cdp_core.config import ConfigError, GraphConfig
from cdp_core.scheduler.execute import MAX_BACKOFF, backoff
from cdp_core.scheduler.triggers import (
    build_trigger,
    cron_trigger,
    cron_weekdays,
    latest_slot,
    missed_slot,
    upcoming,
)

# -- an independent crontab(5) reading -------------------------------------------------------

_NAMES = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10,
    "nov": 11, "dec": 12, "sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
}


def _values(field: str, low: int, high: int) -> set[int]:
    out: set[int] = set()
    for part in field.lower().split(","):
        base, _, step = part.partition("/")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, b = base.split("-")
            first, last = int(_NAMES.get(a, a)), int(_NAMES.get(b, b))
        else:
            first = int(_NAMES.get(base, base))
            last = high if step else first
        out.update(range(first, last + 1, int(step or 1)))
    return out


def cron_matcher(expression: str) -> Callable[[datetime], bool]:
    minute, hour, dom, month, dow = expression.split()
    minutes, hours, days, months = _values(minute, 0, 59), _values(hour, 0, 23), _values(dom, 1, 31), _values(month, 1, 12)
    weekdays = {d % 7 for d in _values(dow, 0, 7)}
    either = not dom.startswith("*") and not dow.startswith("*")  # crontab(5): both restricted -> either matches

    def matches(moment: datetime) -> bool:
        day_ok = moment.day in days
        weekday_ok = (moment.weekday() + 1) % 7 in weekdays  # Python: Monday 0; cron: Sunday 0
        return (
            moment.minute in minutes
            and moment.hour in hours
            and moment.month in months
            and ((day_ok or weekday_ok) if either else (day_ok and weekday_ok))
        )

    return matches


def expected_fires(expression: str, zone: str, now: datetime, count: int) -> list[datetime]:
    """Walk UTC minutes from ``now`` (DST-free windows only) and keep those cron matches in ``zone``."""
    tz = zoneinfo.ZoneInfo(zone)
    moment = now.astimezone(UTC).replace(second=0, microsecond=0)
    if moment < now:
        moment += timedelta(minutes=1)
    matches = cron_matcher(expression)
    found: list[datetime] = []
    while len(found) < count:
        local = moment.astimezone(tz)
        if matches(local):
            found.append(local)
        moment += timedelta(minutes=1)
    return found


EXPRESSIONS = [
    ("*/15 * * * *", "UTC"),
    ("0 2 * * *", "Europe/Berlin"),
    ("30 9 * * 1-5", "Europe/Berlin"),
    ("0 18 * * 0", "America/New_York"),
    ("5 4 * * 7", "Asia/Tokyo"),
    ("0 0 1,15 * *", "UTC"),
    ("0 12 13 * 5", "UTC"),  # the 13th OR any Friday
    ("*/20 8-17 * * mon-fri", "Europe/London"),
    ("0 6 * * */2", "UTC"),  # Sunday, Tuesday, Thursday, Saturday
    ("0 0 1 */3 *", "UTC"),  # quarterly
]
NOW = datetime(2025, 1, 10, 11, 7, 30, tzinfo=UTC)  # a Friday, far from any DST change


@pytest.mark.parametrize(("expression", "zone"), EXPRESSIONS)
def test_next_fire_times_follow_crontab(expression: str, zone: str) -> None:
    trigger = build_trigger(GraphConfig(schedule=expression, timezone=zone))
    assert trigger is not None
    count = 3 if expression == "0 0 1 */3 *" else 12
    assert upcoming(trigger, NOW, count) == expected_fires(expression, zone, NOW, count)


def test_weekday_numbers_are_crons_not_apschedulers() -> None:
    assert cron_weekdays("1-5") == "mon,tue,wed,thu,fri"
    assert cron_weekdays("0") == cron_weekdays("7") == cron_weekdays("sun") == "sun"
    assert cron_weekdays("5-7") == "sun,fri,sat"
    assert cron_weekdays("0-7") == cron_weekdays("*") == "*"
    with pytest.raises(ValueError):
        cron_weekdays("8")
    with pytest.raises(ValueError):
        cron_weekdays("fri-mon")


def test_a_weekday_schedule_skips_the_weekend() -> None:
    trigger = cron_trigger("30 9 * * 1-5", zoneinfo.ZoneInfo("Europe/Berlin"))
    friday_noon = datetime(2025, 1, 10, 12, tzinfo=UTC)
    assert [t.strftime("%a %H:%M") for t in upcoming(trigger, friday_noon, 2)] == ["Mon 09:30", "Tue 09:30"]


def test_intervals_are_aligned_so_every_process_has_the_same_slots() -> None:
    trigger = build_trigger(GraphConfig(every="10m"))
    assert trigger is not None
    assert upcoming(trigger, NOW, 3) == [
        datetime(2025, 1, 10, 11, m, tzinfo=UTC) for m in (10, 20, 30)
    ]
    daily = build_trigger(GraphConfig(every="1d", timezone="Europe/Berlin"))
    assert daily is not None
    assert [t.astimezone(zoneinfo.ZoneInfo("Europe/Berlin")).strftime("%d %H:%M") for t in upcoming(daily, NOW, 2)] == [
        "11 00:00",
        "12 00:00",
    ]
    # built twice (two processes), the same slots
    again = build_trigger(GraphConfig(every="10m"))
    assert again is not None and upcoming(again, NOW, 3) == upcoming(trigger, NOW, 3)


def test_no_schedule_no_trigger() -> None:
    assert build_trigger(GraphConfig()) is None
    assert build_trigger(GraphConfig(depends_on=["a"])) is None


def test_latest_slot_looks_back_as_far_as_needed() -> None:
    every_second = build_trigger(GraphConfig(every="1s"))
    assert every_second is not None
    assert latest_slot(every_second, NOW) == NOW
    assert latest_slot(every_second, NOW + timedelta(milliseconds=400)) == NOW
    yearly = cron_trigger("0 0 1 1 *", zoneinfo.ZoneInfo("UTC"))
    assert latest_slot(yearly, NOW) == datetime(2025, 1, 1, tzinfo=UTC)
    leap = cron_trigger("0 0 29 2 *", zoneinfo.ZoneInfo("UTC"))
    assert latest_slot(leap, NOW) == datetime(2024, 2, 29, tzinfo=UTC)


def test_a_missed_window_is_one_slot_however_many_were_missed() -> None:
    hourly = build_trigger(GraphConfig(every="1h"))
    assert hourly is not None
    down_since = NOW - timedelta(hours=10)
    assert missed_slot(hourly, down_since, NOW) == datetime(2025, 1, 10, 11, tzinfo=UTC)
    assert missed_slot(hourly, None, NOW) == datetime(2025, 1, 10, 11, tzinfo=UTC), "never ran: run once"
    assert missed_slot(hourly, datetime(2025, 1, 10, 11, 0, 1, tzinfo=UTC), NOW) is None, "served already"
    nightly = cron_trigger("0 2 * * *", zoneinfo.ZoneInfo("Europe/Berlin"))
    assert missed_slot(nightly, NOW - timedelta(days=3), NOW) == datetime(2025, 1, 10, 1, tzinfo=UTC)
    assert missed_slot(nightly, datetime(2025, 1, 10, 1, 0, 5, tzinfo=UTC), NOW) is None


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(30, n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(30, 30) == MAX_BACKOFF
    assert backoff(0, 3) == 0


def test_retry_backoff_and_alerts_in_connectors_toml(tmp_path: Path) -> None:
    assert GraphConfig(retry_backoff="1m").backoff_seconds == 60
    assert GraphConfig(retry_backoff=0.25).backoff_seconds == 0.25
    assert GraphConfig().backoff_seconds == 30
    body = ticks_graph("g", 'every = "1s"', extra='retries = 2\nretry_backoff = "10s"') + (
        '\n[alerts]\nwebhook_url = "${HOOK}"\ntimeout = 2.5\n'
    )
    config, _ = load(tmp_path, "sqlite:///x.sqlite", body, env={"HOOK": "https://hooks.example/T0123/secret-token"})
    assert config.root.alerts.webhook_url == "https://hooks.example/T0123/secret-token"
    assert config.root.alerts.timeout == 2.5
    assert config.graphs["g"].config.retries == 2
    assert "secret-token" not in config.redact("posting to https://hooks.example/T0123/secret-token")


def test_a_literal_webhook_url_is_redacted_too(tmp_path: Path) -> None:
    body = ticks_graph("g", 'every = "1s"') + '\n[alerts]\nwebhook_url = "https://hooks.example/plain-token"\n'
    config, _ = load(tmp_path, "sqlite:///x.sqlite", body)
    assert config.redact("url https://hooks.example/plain-token") == "url ***"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('retry_backoff = "soon"', "not an interval"),
        ("retry_backoff = -1", "0 or more"),
        ("retries = -1", "greater than or equal to 0"),
    ],
)
def test_bad_retry_settings_are_config_errors(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, "sqlite:///x.sqlite", ticks_graph("g", 'every = "1s"', extra=extra))
    assert message in str(error.value)


def test_bad_alerts_are_config_errors(tmp_path: Path) -> None:
    body = ticks_graph("g", 'every = "1s"') + '\n[alerts]\nwebhook = "x"\ntimeout = 0\n'
    with pytest.raises(ConfigError) as error:
        load(tmp_path, "sqlite:///x.sqlite", body)
    text = str(error.value)
    assert "alerts.webhook: unknown key" in text and "alerts.timeout" in text
