"""timeutil: a naive datetime is UTC, never the machine's local time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from cdp_core.timeutil import as_utc, aware, utc_now

BERLIN_SUMMER = timezone(timedelta(hours=2))


def test_utc_now_is_aware_utc() -> None:
    assert utc_now().utcoffset() == timedelta(0)


def test_as_utc_takes_naive_as_utc_and_converts_aware() -> None:
    assert as_utc(datetime(2024, 1, 1, 12)) == datetime(2024, 1, 1, 12, tzinfo=UTC)
    converted = as_utc(datetime(2024, 1, 1, 0, 30, tzinfo=BERLIN_SUMMER))
    assert (converted.tzinfo, converted.year, converted.hour) == (UTC, 2023, 22)


def test_aware_takes_naive_as_utc_and_keeps_an_offset() -> None:
    assert aware(datetime(2024, 1, 1, 12)) == datetime(2024, 1, 1, 12, tzinfo=UTC)
    kept = aware(datetime(2024, 1, 1, 0, 30, tzinfo=BERLIN_SUMMER))
    assert (kept.tzinfo, kept.year) == (BERLIN_SUMMER, 2024)
