"""Audience mirror tables: what an ad destination last uploaded, and what the current pass fed it.

See cdp_profiles/audiences.py for how they are used. Rows hold the *hashed* row a
destination uploads (never a raw email or phone), keyed by a member key that is
itself a SHA-256 digest.

- ``audience_members``: the members last confirmed uploaded to an audience, per
  destination connector and audience id, with the row sent and when.
- ``audience_pending``: the members fed to the destination during the current
  pass over its sources. It survives a failed run, so a run that resumes a source
  mid-read still sees the whole input; ``finish()`` diffs it against
  ``audience_members`` and clears it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class AudienceMember(SQLModel, table=True):
    __tablename__ = "audience_members"

    destination: str = Field(primary_key=True, description="the destination connector's name")
    audience_id: str = Field(primary_key=True, description="the audience / user list id on the platform")
    member_key: str = Field(primary_key=True, max_length=64, description="SHA-256 of the normalized primary identifier")
    row: Any = Field(sa_column=Column(JSON, nullable=False))
    row_hash: str = Field(max_length=64)
    uploaded_at: datetime


class AudiencePending(SQLModel, table=True):
    __tablename__ = "audience_pending"

    destination: str = Field(primary_key=True)
    audience_id: str = Field(primary_key=True)
    member_key: str = Field(primary_key=True, max_length=64)
    record_key: str = Field(description="the key of the record the member came from")
    row: Any = Field(sa_column=Column(JSON, nullable=False))
    row_hash: str = Field(max_length=64)
    run_id: str | None = Field(default=None, description="the run that staged it last")
    staged_at: datetime
