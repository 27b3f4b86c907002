"""suppressions, privacy_requests, privacy_targets: the privacy product's tables.

New tables only (cdp_profiles/privacy/models.py): the suppression list of keyed hashes,
the audit log of privacy requests, and each forget request's state per destination.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("hash"),
    )
    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_privacy_requests_created", "privacy_requests", ["created_at"])
    op.create_table(
        "privacy_targets",
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("destination", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_id", "destination"),
    )
    op.create_index("ix_privacy_targets_state", "privacy_targets", ["state", "next_attempt_at"])


def downgrade() -> None:
    # The suppression list keeps forgotten people from coming back; dropping it would let them.
    count = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM suppressions")).scalar_one()
    if count:
        raise RuntimeError(
            f"suppressions holds {count} entries (people who were forgotten or suppressed); downgrading would let "
            "them come back with the next sync: unsuppress them on purpose first if that is really wanted"
        )
    op.drop_index("ix_privacy_targets_state", table_name="privacy_targets")
    op.drop_table("privacy_targets")
    op.drop_index("ix_privacy_requests_created", table_name="privacy_requests")
    op.drop_table("privacy_requests")
    op.drop_table("suppressions")
