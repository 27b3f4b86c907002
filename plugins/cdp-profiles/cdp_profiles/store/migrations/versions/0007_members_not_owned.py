"""id_set_members keeps only the identifiers a set's own profile does not own.

A set's identifiers are in ``id_sets.identifiers``; the members table exists to find,
from an identifier, the sets that carry it. For an identifier the set's profile owns,
``identities`` and the owner's sets (``id_sets.profile_id``) already lead there, so
those rows (nearly all of them: every set of a profile that resolved without a
conflict) only cost a randomly keyed index entry per identifier on every write
(bench/README.md). What stays: identifiers no profile owns, and identifiers another
profile owns (a limit kept them apart).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_CHUNK = 5_000


def upgrade() -> None:
    op.execute(
        "DELETE FROM id_set_members WHERE EXISTS ("
        "SELECT 1 FROM id_sets s JOIN identities i ON i.profile_id = s.profile_id "
        "WHERE s.id = id_set_members.set_id AND i.type = id_set_members.type AND i.value = id_set_members.value)"
    )


def downgrade() -> None:
    # Every set's identifiers become member rows again, read from id_sets in chunks.
    conn = op.get_bind()
    insert = sa.text(
        "INSERT INTO id_set_members (type, value, set_id) VALUES (:type, :value, :set_id) ON CONFLICT DO NOTHING"
    )
    after = ""
    while True:
        rows = conn.execute(
            sa.text("SELECT id, identifiers FROM id_sets WHERE id > :after ORDER BY id LIMIT :n"),
            {"after": after, "n": _CHUNK},
        ).all()
        if not rows:
            return
        members: list[dict[str, object]] = []
        for sid, identifiers in rows:
            ids = json.loads(identifiers) if isinstance(identifiers, str) else identifiers
            members.extend({"type": t, "value": v, "set_id": sid} for t, v in ids)
        if members:
            conn.execute(insert, members)
        after = rows[-1][0]
