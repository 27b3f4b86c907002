"""System tables: sync state (cursor per graph node), sync runs and quarantine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, Text
from sqlmodel import Field, SQLModel


class SyncState(SQLModel, table=True):
    __tablename__ = "sync_state"

    graph: str = Field(primary_key=True)
    node: str = Field(primary_key=True)
    cursor: Any = Field(default=None, sa_column=Column(JSON))
    run_id: str | None = None
    updated_at: datetime


class SyncRun(SQLModel, table=True):
    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_graph_started", "graph", "started_at"),)

    id: str = Field(primary_key=True)
    graph: str
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    nodes: Any = Field(default=None, sa_column=Column(JSON))
    kind: str = Field(default="sync", sa_column=Column(String, nullable=False, server_default="sync"))
    """``sync`` (read the graph's sources) or ``retry`` (``cdp quarantine retry``)."""


class QuarantineRecord(SQLModel, table=True):
    """A rejected record. ``fingerprint`` (graph, node, reason, payload) keeps a bad
    input that every full re-read meets again, or a page re-delivered after a
    crash, from being quarantined twice."""

    __tablename__ = "quarantine"
    __table_args__ = (Index("ix_quarantine_graph_node", "graph", "node"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True)
    graph: str
    node: str
    reason: str = Field(sa_column=Column(Text, nullable=False))
    record_key: str | None = None
    fingerprint: str = Field(unique=True)
    payload: Any = Field(default=None, sa_column=Column(JSON))
    created_at: datetime
