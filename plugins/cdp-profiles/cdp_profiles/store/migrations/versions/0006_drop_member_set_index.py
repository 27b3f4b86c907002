"""Drop ix_id_set_members_set: a set's members are in id_sets.identifiers already.

The index (set_id -> member rows) was read only when a set lost its last record, which is
rare, and cost one more randomly keyed B-tree on every write: set ids are hashes, so each
batch dirtied pages all over it (bench/README.md). That lookup now reads the set's own row.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_id_set_members_set", table_name="id_set_members")


def downgrade() -> None:
    op.create_index("ix_id_set_members_set", "id_set_members", ["set_id"])
