"""Baseline of the kernel's history: the system tables (sync state, runs, quarantine, leases).

Revision ID: k0001
Revises:
Create Date: 2026-12-07

Stores written before the kernel had a history of its own made these tables in the
single history that is now the profile product's (its 0001 and 0003): the migration
runner stamps a store holding all four at this revision, and runs it with
``ADOPT_EXISTING`` set when only some exist, so it creates just the missing ones.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "k0001"
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

    create(
        "sync_state",
        sa.Column("graph", String(), nullable=False),
        sa.Column("node", String(), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=True),
        sa.Column("run_id", String(), nullable=True),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("graph", "node"),
    )
    create(
        "sync_runs",
        sa.Column("id", String(), nullable=False),
        sa.Column("graph", String(), nullable=False),
        sa.Column("status", String(), nullable=False),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("finished_at", Timestamp, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("nodes", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        indexes={"ix_sync_runs_graph_started": ["graph", "started_at"]},
    )
    create(
        "quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", String(), nullable=False),
        sa.Column("graph", String(), nullable=False),
        sa.Column("node", String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("record_key", String(), nullable=True),
        sa.Column("fingerprint", String(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fingerprint"),
        indexes={"ix_quarantine_graph_node": ["graph", "node"], "ix_quarantine_run_id": ["run_id"]},
    )
    create(
        "sync_leases",
        sa.Column("graph", String(), nullable=False),
        sa.Column("holder", String(), nullable=False),
        sa.Column("acquired_at", Timestamp, nullable=False),
        sa.Column("renewed_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("graph"),
    )


def downgrade() -> None:
    for name in ("sync_leases", "quarantine", "sync_runs", "sync_state"):
        op.drop_table(name)  # drops its indexes with it
