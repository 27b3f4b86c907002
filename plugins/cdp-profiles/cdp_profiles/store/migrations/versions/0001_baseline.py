"""Baseline: the profile tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Until the profile product became a plugin of its own, this revision also created
the system tables (sync state, runs, quarantine): the kernel's history creates
those now (its baseline adopts them in a store that has them). A database created
before migrations existed (by ``SQLModel.metadata.create_all``) already has these
tables: the kernel's migration runner stamps it at this revision instead of running it. When only some exist (a database made by an older cdp
that had fewer tables), the upgrade runs with ``ADOPT_EXISTING`` set and
creates just the missing ones.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# `str` fields of the models (SQLModel's AutoString) are VARCHAR without a length;
# `datetime` fields (SQLModel's UTCDateTime) are timezone-aware timestamps.
String = sa.String
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    skip: set[str] = set()
    if context.config.attributes.get("cdp_adopt_existing_tables"):
        skip = set(sa.inspect(op.get_bind()).get_table_names())

    def create(name: str, *columns: sa.Column | sa.Constraint, indexes: dict[str, list[str]] | None = None) -> None:
        if name in skip:
            return
        op.create_table(name, *columns)
        for index, index_columns in (indexes or {}).items():
            op.create_index(index, name, index_columns, unique=False)

    # -- identity graph and profiles --------------------------------------------------------
    create(
        "profiles",
        sa.Column("id", String(length=32), nullable=False),
        sa.Column("founder", String(), nullable=False),
        sa.Column("sort_key", String(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("merged_into", String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        indexes={"ix_profiles_merged_into": ["merged_into"]},
    )
    create(
        "id_sets",
        sa.Column("id", String(length=40), nullable=False),
        sa.Column("identifiers", sa.JSON(), nullable=False),
        sa.Column("sort_key", String(), nullable=False),
        sa.Column("profile_id", String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        indexes={"ix_id_sets_profile_id": ["profile_id"]},
    )
    create(
        "id_set_members",
        sa.Column("type", String(), nullable=False),
        sa.Column("value", String(), nullable=False),
        sa.Column("set_id", String(), nullable=False),
        sa.PrimaryKeyConstraint("type", "value", "set_id"),
        indexes={"ix_id_set_members_set": ["set_id"]},
    )
    create(
        "record_index",
        sa.Column("stream", String(), nullable=False),
        sa.Column("key", String(), nullable=False),
        sa.Column("kind", String(), nullable=False),
        sa.Column("set_id", String(), nullable=False),
        sa.Column("occurred_at", Timestamp, nullable=True),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("run_id", String(), nullable=True),
        sa.PrimaryKeyConstraint("stream", "key"),
        indexes={"ix_record_index_set": ["set_id"]},
    )
    create(
        "identities",
        sa.Column("type", String(), nullable=False),
        sa.Column("value", String(), nullable=False),
        sa.Column("profile_id", String(), nullable=False),
        sa.Column("source", String(), nullable=True),
        sa.Column("first_seen", String(), nullable=True),
        sa.PrimaryKeyConstraint("type", "value"),
        indexes={"ix_identities_profile_id": ["profile_id"]},
    )
    create(
        "traits",
        sa.Column("profile_id", String(), nullable=False),
        sa.Column("name", String(), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("source", String(), nullable=True),
        sa.Column("set_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("profile_id", "name"),
    )
    create(
        "merge_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("run_id", String(), nullable=True),
        sa.Column("winner", String(), nullable=False),
        sa.Column("loser", String(), nullable=False),
        sa.Column("identifier_type", String(), nullable=True),
        sa.Column("identifier_value", String(), nullable=True),
        sa.Column("record", String(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("undone_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        indexes={"ix_merge_log_loser": ["loser"], "ix_merge_log_winner": ["winner"]},
    )

    # -- records, by kind -------------------------------------------------------------------
    create(
        "profile_records",
        sa.Column("stream", String(), nullable=False),
        sa.Column("key", String(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("occurred_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("stream", "key"),
    )
    create(
        "events",
        sa.Column("stream", String(), nullable=False),
        sa.Column("key", String(), nullable=False),
        sa.Column("name", String(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("occurred_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("stream", "key"),
        indexes={"ix_events_occurred_at": ["occurred_at"]},
    )
    create(
        "orders",
        sa.Column("stream", String(), nullable=False),
        sa.Column("key", String(), nullable=False),
        sa.Column("order_id", String(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("currency", String(), nullable=True),
        sa.Column("status", String(), nullable=True),
        sa.Column("items", sa.JSON(), nullable=True),
        sa.Column("occurred_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("stream", "key"),
        indexes={"ix_orders_occurred_at": ["occurred_at"]},
    )
    create(
        "nps_responses",
        sa.Column("stream", String(), nullable=False),
        sa.Column("key", String(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("category", String(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("survey", String(), nullable=True),
        sa.Column("channel", String(), nullable=True),
        sa.Column("answered_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("stream", "key"),
        indexes={"ix_nps_responses_answered_at": ["answered_at"]},
    )
    create(
        "consents",
        sa.Column("stream", String(), nullable=False),
        sa.Column("key", String(), nullable=False),
        sa.Column("purpose", String(), nullable=False),
        sa.Column("status", String(), nullable=False),
        sa.Column("source", String(), nullable=True),
        sa.Column("occurred_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("stream", "key"),
    )


def downgrade() -> None:
    for name in (
        "consents",
        "nps_responses",
        "orders",
        "events",
        "profile_records",
        "merge_log",
        "traits",
        "identities",
        "record_index",
        "id_set_members",
        "id_sets",
        "profiles",
    ):
        op.drop_table(name)  # drops its indexes with it
