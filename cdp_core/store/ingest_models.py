"""The ingest log: every message ``cdp serve`` accepted, append-only, before any graph reads it (cdp_core/ingest/)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

LOG_ID = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit id on PostgreSQL; SQLite's ``INTEGER PRIMARY KEY`` (the rowid) there."""


class IngestLogRow(SQLModel, table=True):
    """One accepted message (an HTTP API call's message, a vendor's webhook delivery).

    ``(source, message_id)`` is unique: a message sent again is not stored again.
    ``txid`` is the writing transaction's id on PostgreSQL (``pg_current_xact_id()``),
    0 on SQLite: readers order by ``(txid, id)`` and read only transactions that are over,
    so a row that commits late is never skipped (docs/ingest.md).
    """

    __tablename__ = "ingest_log"
    __table_args__ = (
        UniqueConstraint("source", "message_id", name="uq_ingest_log_source_message"),
        Index("ix_ingest_log_source_txid_id", "source", "txid", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(LOG_ID, primary_key=True, autoincrement=True))
    source: str = Field(sa_column=Column(String, nullable=False))
    message_id: str = Field(sa_column=Column(String, nullable=False))
    kind: str = Field(sa_column=Column(String, nullable=False))
    body: Any = Field(sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    txid: int = Field(sa_column=Column(BigInteger, nullable=False))
