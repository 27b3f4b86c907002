"""The kernel's system tables as SQLAlchemy Core ``Table`` objects: what its code queries and writes.

The tables are declared as SQLModel classes (``models``, ``lease_models``, ``ingest_models``), which the
migrations are checked against; every other module uses these, so a command loads neither SQLModel nor
SQLAlchemy's ORM (cdp_core/store/table_source.py says why). Each column has its name, type, key and
nullability; indexes and server defaults are in the migrations.

Generated from the SQLModel classes by `python -m cdp_core.store.generate_tables`: do not edit.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, DateTime, Integer, MetaData, String, Table, Text

from cdp_core.store.coretypes import UTCDateTime

metadata = MetaData()

ingest_log = Table(
    "ingest_log",
    metadata,
    Column("id", BigInteger(), primary_key=True),
    Column("source", String(), nullable=False),
    Column("message_id", String(), nullable=False),
    Column("kind", String(), nullable=False),
    Column("body", JSON(), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("txid", BigInteger(), nullable=False),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("run_id", String(), nullable=False),
    Column("graph", String(), nullable=False),
    Column("node", String(), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("record_key", String()),
    Column("fingerprint", String(), nullable=False),
    Column("payload", JSON()),
    Column("created_at", UTCDateTime(), nullable=False),
)

sync_leases = Table(
    "sync_leases",
    metadata,
    Column("graph", String(), primary_key=True),
    Column("holder", String(), nullable=False),
    Column("acquired_at", UTCDateTime(), nullable=False),
    Column("renewed_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", String(), primary_key=True),
    Column("graph", String(), nullable=False),
    Column("status", String(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("error", Text()),
    Column("nodes", JSON()),
    Column("kind", String(), nullable=False),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("graph", String(), primary_key=True),
    Column("node", String(), primary_key=True),
    Column("cursor", JSON()),
    Column("run_id", String()),
    Column("updated_at", UTCDateTime(), nullable=False),
)
