"""The lease table: which process may run a sync graph right now (see leases.py for why it looks like this)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class SyncLease(SQLModel, table=True):
    """One row per graph being run. ``expires_at`` is renewed by the holder's
    heartbeat; once it has passed, the holder is taken for dead and anyone may
    take the lease over. ``renewed_at`` is the last moment the holder was seen alive."""

    __tablename__ = "sync_leases"

    graph: str = Field(primary_key=True)
    holder: str
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime
