"""profile_records.traits: the traits a record gives, by its stream's trait mapping.

Applied when the record arrives at the store (cdp_core/traits.py): trait name -> value.
NULL for a record whose stream declares no mapping, and for every record stored before
this revision: then every field of ``data`` is a trait, as it was. Stored, not computed
again, so a replay of the stored records gives the traits the incremental path gave.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("profile_records") as batch:
        batch.add_column(sa.Column("traits", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("profile_records") as batch:
        batch.drop_column("traits")
