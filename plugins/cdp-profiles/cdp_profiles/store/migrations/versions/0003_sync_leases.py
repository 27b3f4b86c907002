"""sync_leases: moved to the kernel's history (its k0001); nothing to do here any more.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

This revision created the lease table while the store had one history. It stays,
empty, so stores at 0002 or later keep a known revision.
"""

from __future__ import annotations

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
