"""Materialized computed traits and segment membership, with its history (docs/segments.md).

Derived from the profile tables by the segment engine's queries (cdp_profiles/membership/refresh.py),
set-based, never written per profile:

- ``computed_traits``: each live profile's computed trait values, one row per (profile, trait), with
  the time they were computed. Shown as traits whose source is ``computed``.
- ``segment_members``: who is in each segment now, and since when.
- ``segment_history``: one row per stay in a segment: when the person entered and when they left
  (``left_at`` is NULL while they are still in). A person who leaves and comes back has two rows.
- ``segment_refreshes``: the last refresh of each segment: when, and how many members it found.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel


class ComputedTrait(SQLModel, table=True):
    __tablename__ = "computed_traits"

    profile_id: str = Field(primary_key=True, max_length=32)
    name: str = Field(primary_key=True)
    value: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    computed_at: datetime


class SegmentMember(SQLModel, table=True):
    __tablename__ = "segment_members"
    __table_args__ = (Index("ix_segment_members_profile", "profile_id"),)

    segment: str = Field(primary_key=True)
    profile_id: str = Field(primary_key=True, max_length=32)
    entered_at: datetime


class SegmentHistory(SQLModel, table=True):
    __tablename__ = "segment_history"
    __table_args__ = (Index("ix_segment_history_member", "segment", "profile_id"),)

    id: int | None = Field(default=None, primary_key=True)
    segment: str
    profile_id: str = Field(max_length=32)
    entered_at: datetime
    left_at: datetime | None = Field(default=None, description="None while the person is still a member")


class SegmentRefresh(SQLModel, table=True):
    __tablename__ = "segment_refreshes"

    segment: str = Field(primary_key=True)
    refreshed_at: datetime
    members: int
    entered: int = Field(description="how many entered at that refresh")
    left: int = Field(description="how many left at that refresh")
