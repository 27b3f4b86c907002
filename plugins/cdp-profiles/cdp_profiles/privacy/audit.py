"""The audit log of privacy requests (``privacy_requests``): writing one row, and reading them back.

A row says what was asked (``kind``), when, with what outcome, about whom (the keyed hash of
the identifier asked for, cdp_profiles/privacy/keys.py: never the identifier) and what was
done (``details``: counts, never values). ``cdp privacy log`` lists them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from cdp_core.timeutil import as_utc
from pydantic import BaseModel, field_validator
from sqlalchemy import Connection, insert, select

from cdp_profiles.store import tables

_requests = tables.privacy_requests
SUBJECT_SHOWN = 12
"""How many hex digits of a subject hash ``cdp privacy log`` shows: enough to tell requests apart."""


def new_request_id() -> str:
    return uuid.uuid4().hex


def write_request(
    conn: Connection,
    kind: str,
    outcome: str,
    *,
    created_at: datetime,
    finished_at: datetime | None = None,
    subject: str | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> str:
    """Insert one audit row in the caller's transaction; returns its id."""
    rid = request_id or new_request_id()
    conn.execute(
        insert(_requests).values(
            id=rid, kind=kind, created_at=created_at, finished_at=finished_at, outcome=outcome,
            subject=subject, reason=reason, details=details,
        )
    )  # fmt: skip
    return rid


class AuditEntry(BaseModel):
    id: str
    kind: str
    created_at: datetime
    finished_at: datetime | None
    outcome: str
    subject: str | None
    reason: str | None
    details: Any

    @field_validator("created_at", "finished_at", mode="after")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)  # stored in UTC, read back naive on SQLite

    def shown(self) -> dict[str, Any]:
        """As ``cdp privacy log --json`` gives it: the subject hash cut to :data:`SUBJECT_SHOWN` digits."""
        out = self.model_dump(mode="json")
        out["subject"] = self.subject[:SUBJECT_SHOWN] if self.subject else None
        return out


def read_log(conn: Connection, limit: int, kind: str | None = None) -> list[AuditEntry]:
    """The newest ``limit`` requests (of ``kind``), newest first."""
    stmt = select(_requests)
    if kind is not None:
        stmt = stmt.where(_requests.c.kind == kind)
    stmt = stmt.order_by(_requests.c.created_at.desc(), _requests.c.id.desc()).limit(limit)
    return [AuditEntry.model_validate(dict(r._mapping)) for r in conn.execute(stmt)]
