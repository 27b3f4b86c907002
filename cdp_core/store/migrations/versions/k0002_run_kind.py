"""sync_runs.kind: a sync, or a retry of quarantined records (``cdp quarantine retry``).

Revision ID: k0002
Revises: k0001
Create Date: 2027-01-12

Every run before this revision read its graph's sources: ``sync``. The scheduler
counts only syncs as a served slot or a dependency's success.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "k0002"
down_revision = "k0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A sync_runs adopted at k0001 that has the column already (made from today's models) keeps it.
    if "kind" in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("sync_runs")}:
        return
    # One ALTER TABLE ... ADD COLUMN on either database: existing rows get the default.
    op.add_column("sync_runs", sa.Column("kind", sa.String(), nullable=False, server_default="sync"))


def downgrade() -> None:
    with op.batch_alter_table("sync_runs") as batch:
        batch.drop_column("kind")
