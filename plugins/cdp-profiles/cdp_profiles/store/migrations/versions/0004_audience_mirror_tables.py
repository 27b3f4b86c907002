"""audience_members, audience_pending: the state of ad audience mirrors (cdp_profiles/audiences.py).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audience_members",
        sa.Column("destination", sa.String(), nullable=False),
        sa.Column("audience_id", sa.String(), nullable=False),
        sa.Column("member_key", sa.String(length=64), nullable=False),
        sa.Column("row", sa.JSON(), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("destination", "audience_id", "member_key"),
    )
    op.create_table(
        "audience_pending",
        sa.Column("destination", sa.String(), nullable=False),
        sa.Column("audience_id", sa.String(), nullable=False),
        sa.Column("member_key", sa.String(length=64), nullable=False),
        sa.Column("record_key", sa.String(), nullable=False),
        sa.Column("row", sa.JSON(), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("staged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("destination", "audience_id", "member_key"),
    )


def downgrade() -> None:
    # audience_members is what the ad platforms were last sent: without it the next run
    # cannot tell whom to remove. Refuse rather than lose it; audience_pending is transient.
    count = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM audience_members")).scalar_one()
    if count:
        raise RuntimeError(
            f"audience_members holds {count} rows (what the ad audiences were last sent); downgrading would lose "
            "them: empty the table on purpose first if that is really wanted"
        )
    op.drop_table("audience_pending")
    op.drop_table("audience_members")
