"""Reading segments and computed traits back: counts, last refreshes, history, a person's segments, values.

One query per question, whatever the number of profiles or segments asked about.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from cdp_core.timeutil import as_utc
from pydantic import BaseModel, field_validator
from sqlalchemy import Connection, func, select

from cdp_profiles.store import tables

_computed = tables.computed_traits
_members = tables.segment_members
_history = tables.segment_history
_refreshes = tables.segment_refreshes

COMPUTED_SOURCE = "computed"
"""The source a computed trait shows (the 360° view, ``cdp profiles show``)."""


class _Times(BaseModel):
    @field_validator("*", mode="after")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        return as_utc(value) if isinstance(value, datetime) else value  # stored in UTC, read back naive on SQLite


class Refreshed(_Times):
    segment: str
    refreshed_at: datetime
    members: int
    entered: int
    left: int


class Stay(_Times):
    """One stay of a person in a segment: entered, and left (None while still a member)."""

    segment: str
    profile_id: str
    entered_at: datetime
    left_at: datetime | None = None


class Membership(_Times):
    segment: str
    entered_at: datetime


def member_counts(conn: Connection) -> dict[str, int]:
    """segment -> current members (as of its last refresh)."""
    stmt = select(_members.c.segment, func.count()).group_by(_members.c.segment)
    return {segment: n for segment, n in conn.execute(stmt)}


def last_refreshes(conn: Connection) -> dict[str, Refreshed]:
    return {r.segment: Refreshed.model_validate(dict(r._mapping)) for r in conn.execute(select(_refreshes))}


def history(conn: Connection, segment: str, limit: int, profile_id: str | None = None) -> list[Stay]:
    """The segment's entries and exits, latest change first."""
    latest = func.coalesce(_history.c.left_at, _history.c.entered_at)
    stmt = select(_history).where(_history.c.segment == segment)
    if profile_id is not None:
        stmt = stmt.where(_history.c.profile_id == profile_id)
    stmt = stmt.order_by(latest.desc(), _history.c.id.desc()).limit(limit)
    return [Stay.model_validate(dict(r._mapping)) for r in conn.execute(stmt)]


def segments_of(conn: Connection, profile_id: str) -> list[Membership]:
    """The segments a person is in (as of each one's last refresh), by name."""
    stmt = select(_members.c.segment, _members.c.entered_at).where(_members.c.profile_id == profile_id)
    return [Membership.model_validate(dict(r._mapping)) for r in conn.execute(stmt.order_by(_members.c.segment))]


def computed_values(conn: Connection, profile_ids: Iterable[str]) -> dict[str, dict[str, tuple[Any, datetime]]]:
    """profile -> trait name -> (value, computed_at), for the given profiles."""
    ids = list(profile_ids)
    out: dict[str, dict[str, tuple[Any, datetime]]] = defaultdict(dict)
    if not ids:
        return out
    stmt = select(_computed).where(_computed.c.profile_id.in_(ids)).order_by(_computed.c.profile_id, _computed.c.name)
    for r in conn.execute(stmt):
        out[r.profile_id][r.name] = (r.value, as_utc(r.computed_at))
    return out
