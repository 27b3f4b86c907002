"""The profile product's tables as SQLAlchemy Core ``Table`` objects: what its code queries and writes.

The tables are declared as SQLModel classes (``profile_models``, ``segment_models``, ``privacy_models``,
``audience_models``), which the migrations are checked against; every other module uses these, so a
command loads neither SQLModel nor SQLAlchemy's ORM (cdp_core/store/table_source.py says why). Each
column has its name, type, key and nullability; indexes and server defaults are in the migrations.

Generated from the SQLModel classes by `python -m cdp_profiles.store.generate_tables`: do not edit.
"""

from __future__ import annotations

from cdp_core.store.coretypes import UTCDateTime
from sqlalchemy import JSON, Boolean, Column, Integer, MetaData, Numeric, String, Table, Text

metadata = MetaData()

audience_members = Table(
    "audience_members",
    metadata,
    Column("destination", String(), primary_key=True),
    Column("audience_id", String(), primary_key=True),
    Column("member_key", String(length=64), primary_key=True),
    Column("row", JSON(), nullable=False),
    Column("row_hash", String(length=64), nullable=False),
    Column("uploaded_at", UTCDateTime(), nullable=False),
)

audience_pending = Table(
    "audience_pending",
    metadata,
    Column("destination", String(), primary_key=True),
    Column("audience_id", String(), primary_key=True),
    Column("member_key", String(length=64), primary_key=True),
    Column("record_key", String(), nullable=False),
    Column("row", JSON(), nullable=False),
    Column("row_hash", String(length=64), nullable=False),
    Column("run_id", String()),
    Column("staged_at", UTCDateTime(), nullable=False),
)

computed_traits = Table(
    "computed_traits",
    metadata,
    Column("profile_id", String(length=32), primary_key=True),
    Column("name", String(), primary_key=True),
    Column("value", JSON()),
    Column("computed_at", UTCDateTime(), nullable=False),
)

consents = Table(
    "consents",
    metadata,
    Column("stream", String(), primary_key=True),
    Column("key", String(), primary_key=True),
    Column("purpose", String(), nullable=False),
    Column("status", String(), nullable=False),
    Column("source", String()),
    Column("occurred_at", UTCDateTime()),
)

events = Table(
    "events",
    metadata,
    Column("stream", String(), primary_key=True),
    Column("key", String(), primary_key=True),
    Column("name", String(), nullable=False),
    Column("properties", JSON(), nullable=False),
    Column("occurred_at", UTCDateTime()),
)

id_set_members = Table(
    "id_set_members",
    metadata,
    Column("type", String(), primary_key=True),
    Column("value", String(), primary_key=True),
    Column("set_id", String(), primary_key=True),
)

id_sets = Table(
    "id_sets",
    metadata,
    Column("id", String(length=40), primary_key=True),
    Column("identifiers", JSON(), nullable=False),
    Column("sort_key", String(), nullable=False),
    Column("profile_id", String()),
)

identities = Table(
    "identities",
    metadata,
    Column("type", String(), primary_key=True),
    Column("value", String(), primary_key=True),
    Column("profile_id", String(), nullable=False),
    Column("source", String()),
    Column("first_seen", String()),
)

merge_log = Table(
    "merge_log",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("run_id", String()),
    Column("winner", String(), nullable=False),
    Column("loser", String(), nullable=False),
    Column("identifier_type", String()),
    Column("identifier_value", String()),
    Column("record", String()),
    Column("reason", Text(), nullable=False),
    Column("undone_at", UTCDateTime()),
)

nps_responses = Table(
    "nps_responses",
    metadata,
    Column("stream", String(), primary_key=True),
    Column("key", String(), primary_key=True),
    Column("score", Integer(), nullable=False),
    Column("category", String(), nullable=False),
    Column("comment", Text()),
    Column("survey", String()),
    Column("channel", String()),
    Column("answered_at", UTCDateTime()),
)

orders = Table(
    "orders",
    metadata,
    Column("stream", String(), primary_key=True),
    Column("key", String(), primary_key=True),
    Column("order_id", String(), nullable=False),
    Column("amount", Numeric(precision=18, scale=4)),
    Column("currency", String()),
    Column("status", String()),
    Column("items", JSON()),
    Column("occurred_at", UTCDateTime()),
)

privacy_requests = Table(
    "privacy_requests",
    metadata,
    Column("id", String(length=32), primary_key=True),
    Column("kind", String(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("outcome", String(), nullable=False),
    Column("subject", String(length=64)),
    Column("reason", Text()),
    Column("details", JSON()),
)

privacy_targets = Table(
    "privacy_targets",
    metadata,
    Column("request_id", String(length=32), primary_key=True),
    Column("destination", String(), primary_key=True),
    Column("state", String(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("next_attempt_at", UTCDateTime()),
    Column("answer", Text()),
    Column("payload", Text()),
    Column("updated_at", UTCDateTime(), nullable=False),
)

profile_records = Table(
    "profile_records",
    metadata,
    Column("stream", String(), primary_key=True),
    Column("key", String(), primary_key=True),
    Column("data", JSON(), nullable=False),
    Column("traits", JSON()),
    Column("occurred_at", UTCDateTime()),
)

profiles = Table(
    "profiles",
    metadata,
    Column("id", String(length=32), primary_key=True),
    Column("founder", String(), nullable=False),
    Column("sort_key", String(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("merged_into", String()),
    Column("traits", JSON(), nullable=False),
    Column("trait_sources", JSON(), nullable=False),
    Column("settled", Boolean(), nullable=False),
)

record_index = Table(
    "record_index",
    metadata,
    Column("stream", String(), primary_key=True),
    Column("key", String(), primary_key=True),
    Column("kind", String(), nullable=False),
    Column("set_id", String()),
    Column("profile_id", String()),
    Column("identifiers", JSON()),
    Column("occurred_at", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("run_id", String()),
)

segment_history = Table(
    "segment_history",
    metadata,
    Column("id", Integer(), primary_key=True),
    Column("segment", String(), nullable=False),
    Column("profile_id", String(length=32), nullable=False),
    Column("entered_at", UTCDateTime(), nullable=False),
    Column("left_at", UTCDateTime()),
)

segment_members = Table(
    "segment_members",
    metadata,
    Column("segment", String(), primary_key=True),
    Column("profile_id", String(length=32), primary_key=True),
    Column("entered_at", UTCDateTime(), nullable=False),
)

segment_refreshes = Table(
    "segment_refreshes",
    metadata,
    Column("segment", String(), primary_key=True),
    Column("refreshed_at", UTCDateTime(), nullable=False),
    Column("members", Integer(), nullable=False),
    Column("entered", Integer(), nullable=False),
    Column("left", Integer(), nullable=False),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("hash", String(length=64), primary_key=True),
    Column("type", String(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("request_id", String(length=32)),
)
