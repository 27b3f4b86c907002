"""ingest_log: the append-only log of messages ``cdp serve`` accepted (HTTP API calls, vendor webhooks).

Revision ID: k0003
Revises: k0002
Create Date: 2027-02-01

``(source, message_id)`` is unique (a message sent again is dropped by ``ON CONFLICT DO
NOTHING``); ``(source, txid, id)`` is the order readers follow (docs/ingest.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "k0003"
down_revision = "k0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "message_id", name="uq_ingest_log_source_message"),
    )
    op.create_index("ix_ingest_log_source_txid_id", "ingest_log", ["source", "txid", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ingest_log_source_txid_id", table_name="ingest_log")
    op.drop_table("ingest_log")
