"""computed_traits, segment_members, segment_history, segment_refreshes: what segments and computed traits hold.

New tables only: computed trait values per profile, current segment membership, one history
row per stay in a segment, and the last refresh of each segment (cdp_profiles/store/segment_models.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "computed_traits",
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", "name"),
    )
    op.create_table(
        "segment_members",
        sa.Column("segment", sa.String(), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("segment", "profile_id"),
    )
    op.create_index("ix_segment_members_profile", "segment_members", ["profile_id"])
    op.create_table(
        "segment_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_segment_history_member", "segment_history", ["segment", "profile_id"])
    op.create_table(
        "segment_refreshes",
        sa.Column("segment", sa.String(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("entered", sa.Integer(), nullable=False),
        sa.Column("left", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("segment"),
    )


def downgrade() -> None:
    # Everything here is derived from the profile tables and rebuilt by `cdp segments refresh`,
    # except the history of who entered and left when: refuse rather than lose it.
    count = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM segment_history")).scalar_one()
    if count:
        raise RuntimeError(
            f"segment_history holds {count} rows (who entered and left each segment, and when); downgrading "
            "would lose them: empty the table on purpose first if that is really wanted"
        )
    op.drop_table("segment_refreshes")
    op.drop_index("ix_segment_history_member", table_name="segment_history")
    op.drop_table("segment_history")
    op.drop_index("ix_segment_members_profile", table_name="segment_members")
    op.drop_table("segment_members")
    op.drop_table("computed_traits")
