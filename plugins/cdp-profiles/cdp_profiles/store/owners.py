"""Whose a stored record is: the one way every reader finds a record's person.

A record reaches its person through its identifier set (``record_index.set_id ->
id_sets.profile_id``), or, on the activity fast path (cdp_profiles/store/activity.py), directly
(``record_index.profile_id``). Exactly one of the two is set for a record of a person; neither for
an anonymous event, order or NPS answer. Both always name a live profile: a replay that merges or
splits a profile first gives its fast-path records their sets.

Readers join ``record_index`` to ``id_sets`` with :func:`with_sets` (an outer join) and read
:func:`owner_of`; raw SQL uses :data:`OWNER_JOIN` and :data:`OWNER_SQL`. A reader of the records of
some profiles (one person's view, a run's touched profiles) starts from :func:`records_of` instead:
``COALESCE`` of two columns can use no index, the two selects it unites each use one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, CompoundSelect, Subquery, Table, and_, func, select, union_all

from cdp_profiles.store import tables

_index = tables.record_index
_sets = tables.id_sets

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


def records_of(profiles: Any) -> CompoundSelect:
    """``(stream, key, profile_id)`` of the records of ``profiles`` (ids, or a select of one column of ids).

    A ``UNION ALL`` of two indexed selects: the records of the profiles' sets (``ix_id_sets_profile_id``
    then ``ix_record_index_set``) and their fast-path records (``ix_record_index_profile``). A record is
    in exactly one of the two. ``record_index.profile_id`` names live profiles only, as
    ``id_sets.profile_id`` does, so ``profiles`` may hold merged ones (they add nothing).
    """
    by_set = select(_index.c.stream, _index.c.key, _sets.c.profile_id).select_from(
        _index.join(_sets, _sets.c.id == _index.c.set_id)
    )
    by_set = by_set.where(_sets.c.profile_id.in_(profiles))
    direct = select(_index.c.stream, _index.c.key, _index.c.profile_id).where(_index.c.profile_id.in_(profiles))
    return union_all(by_set, direct)


def owned(table: Table | None = None, profiles: Any = None) -> tuple[Any, ColumnElement[Any]]:
    """``record_index`` (joined to ``table``, a kind table keyed by ``(stream, key)``, if given) with each row's
    person, and the column of that person.

    Without ``profiles``: every row, the person by :func:`with_sets` and :func:`owner_of` (NULL for an
    anonymous record: filter on it). With ``profiles`` (ids, or a select of one column of ids): only
    their records, found through :func:`records_of` (indexed) and joined by primary key.
    """
    base: Any = _index if table is None else table.join(
        _index, and_(_index.c.stream == table.c.stream, _index.c.key == table.c.key)
    )
    if profiles is None:
        return with_sets(base), owner_of()
    mine: Subquery = records_of(profiles).subquery("owned")
    joined = base.join(mine, and_(mine.c.stream == _index.c.stream, mine.c.key == _index.c.key))
    return joined, mine.c.profile_id
