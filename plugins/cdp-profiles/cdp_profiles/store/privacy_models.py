"""Privacy tables: the suppression list, the audit log of requests, and each forget's state per destination.

None holds an identifier in readable form:

- ``suppressions``: the keyed hash (cdp_profiles/privacy/keys.py) of each suppressed normalized
  identifier, with its type; a record carrying one is dropped before it is stored.
- ``privacy_requests``: the audit log: one row per request (forget, suppress, unsuppress,
  export, purge): when, the outcome, the keyed hash of the identifier asked for, the
  operator's reason, and what was done (counts per table, no values).
- ``privacy_targets``: for a forget, its state at each destination: ``pending``, ``done``,
  ``failed`` (gave up, with the vendor's answer) or ``unsupported`` (the operator acts by
  hand); what must still be sent is sealed with the privacy key and cleared once done.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel


class Suppression(SQLModel, table=True):
    __tablename__ = "suppressions"

    hash: str = Field(primary_key=True, max_length=64, description="keyed hash of TYPE and the normalized value")
    type: str = Field(description="the identifier type (email, phone, hubspot_id...)")
    created_at: datetime
    request_id: str | None = Field(default=None, max_length=32, description="the privacy request that added it")


class PrivacyRequest(SQLModel, table=True):
    __tablename__ = "privacy_requests"
    __table_args__ = (Index("ix_privacy_requests_created", "created_at"),)

    id: str = Field(primary_key=True, max_length=32)
    kind: str = Field(description="forget, suppress, unsuppress, export or purge")
    created_at: datetime
    finished_at: datetime | None = None
    outcome: str = Field(description="done, failed, not_found, pending (destinations still to confirm)")
    subject: str | None = Field(default=None, max_length=64, description="keyed hash of the identifier asked for")
    reason: str | None = Field(default=None, sa_column=Column(Text))
    details: Any = Field(default=None, sa_column=Column(JSON), description="what was done: counts, never values")


class PrivacyTarget(SQLModel, table=True):
    __tablename__ = "privacy_targets"
    __table_args__ = (Index("ix_privacy_targets_state", "state", "next_attempt_at"),)

    request_id: str = Field(primary_key=True, max_length=32)
    destination: str = Field(primary_key=True, description="the destination connector's name")
    state: str = Field(description="pending, done, failed or unsupported")
    attempts: int = 0
    next_attempt_at: datetime | None = None
    answer: str | None = Field(default=None, sa_column=Column(Text), description="the vendor's last answer (redacted)")
    payload: str | None = Field(default=None, sa_column=Column(Text), description="sealed: what is still to be sent")
    updated_at: datetime
