"""record_index.profile_id and .identifiers: the activity fast path.

An event, order or NPS answer whose identifiers all belong to one profile is stored with
that profile's id and its identifiers instead of an identifier set
(cdp_profiles/store/activity.py). Every record stored before this revision has its set
(or none: anonymous), so nothing is moved: both columns start NULL.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("record_index") as batch:
        batch.add_column(sa.Column("profile_id", sa.String(), nullable=True))
        batch.add_column(sa.Column("identifiers", sa.JSON(), nullable=True))
    op.create_index(
        "ix_record_index_profile",
        "record_index",
        ["profile_id"],
        sqlite_where=sa.text("profile_id IS NOT NULL"),
        postgresql_where=sa.text("profile_id IS NOT NULL"),
    )


def downgrade() -> None:
    # A fast-path record has no set to fall back on: refuse rather than orphan it.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM record_index WHERE profile_id IS NOT NULL LIMIT 1")).first():
        raise RuntimeError("records stored on the activity fast path have no identifier set; cannot downgrade")
    op.drop_index("ix_record_index_profile", table_name="record_index")
    with op.batch_alter_table("record_index") as batch:
        batch.drop_column("identifiers")
        batch.drop_column("profile_id")
