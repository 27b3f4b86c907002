"""The one reading of "now" and of a naive datetime for the kernel and its plugins.

cdp stores and compares times in UTC. A datetime without an offset (SQLite hands
them back, some vendors send them) is taken as UTC, never as the machine's local
time, which is what ``datetime.astimezone`` would assume.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["as_utc", "aware", "utc_now"]


def utc_now() -> datetime:
    """The current time, aware, in UTC; the default of every injectable clock."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC: a naive value is taken as UTC, an aware one converted."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def aware(value: datetime) -> datetime:
    """``value`` with an offset: a naive value is taken as UTC, an aware one kept as it is.

    For values whose own offset still matters (the year of ``2024-01-01T00:30+02:00``
    is 2024, not the 2023 of its UTC reading); otherwise prefer :func:`as_utc`.
    """
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
