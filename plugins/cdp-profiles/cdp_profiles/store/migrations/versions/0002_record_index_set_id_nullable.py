"""record_index.set_id nullable: an anonymous record (no identifier) belongs to no identifier set.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch: SQLite cannot ALTER a column, so the table is copied (rows and indexes kept)
    with op.batch_alter_table("record_index") as batch_op:
        batch_op.alter_column("set_id", existing_type=sa.String(), nullable=True)


def downgrade() -> None:
    # fails while anonymous records exist, rather than dropping them
    with op.batch_alter_table("record_index") as batch_op:
        batch_op.alter_column("set_id", existing_type=sa.String(), nullable=False)
