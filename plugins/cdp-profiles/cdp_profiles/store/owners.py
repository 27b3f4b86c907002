"""Whose a stored record is: the one way every reader finds a record's person.

A record reaches its person through its identifier set (``record_index.set_id ->
id_sets.profile_id``), or, on the activity fast path (cdp_profiles/store/activity.py), directly
(``record_index.profile_id``). Exactly one of the two is set for a record of a person; neither for
an anonymous event, order or NPS answer. Both always name a live profile: a replay that merges or
splits a profile first gives its fast-path records their sets.

Readers join ``record_index`` to ``id_sets`` with :func:`with_sets` (an outer join) and read
:func:`owner_of`; raw SQL uses :data:`OWNER_JOIN` and :data:`OWNER_SQL`.
"""

from __future__ import annotations

from typing import Any

from cdp_core.store.tables import table_of
from sqlalchemy import ColumnElement, func

from cdp_profiles.store import profile_models as m

_index = table_of(m.RecordIndex)
_sets = table_of(m.IdSet)

OWNER_JOIN = "LEFT JOIN id_sets s ON s.id = r.set_id"
"""Raw SQL: join a ``record_index r`` to its set as ``s`` (use with :data:`OWNER_SQL`)."""
OWNER_SQL = "COALESCE(s.profile_id, r.profile_id)"
"""Raw SQL: the person of ``record_index r`` (after :data:`OWNER_JOIN`); NULL for an anonymous record."""


def with_sets(from_clause: Any) -> Any:
    """``from_clause`` (which holds ``record_index``) outer-joined to the records' identifier sets."""
    return from_clause.outerjoin(_sets, _sets.c.id == _index.c.set_id)


def owner_of() -> ColumnElement[Any]:
    """The person of a ``record_index`` row joined by :func:`with_sets`; NULL for an anonymous record."""
    return func.coalesce(_sets.c.profile_id, _index.c.profile_id)
