"""Deleting one person's rows from the profile product's tables, set-based (a few statements per table).

Called by forget (cdp_profiles/privacy/forget.py) inside its transaction. Every statement
selects by the person's keys (their profile ids, identifier sets, identifiers, record keys),
in chunks of at most :data:`CHUNK` values; none runs per row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection, Table, delete, select

from cdp_profiles.privacy.person import Person
from cdp_profiles.store import tables

CHUNK = 1_000
"""Values per ``IN (...)``: well below both databases' limits on bound parameters."""

_index = tables.record_index
RECORD_TABLES: tuple[Table, ...] = (
    tables.profile_records, tables.events, tables.orders, tables.nps_responses, tables.consents
)
"""The stored records of every kind, keyed by (stream, key) as ``record_index`` is."""
PROFILE_TABLES: tuple[Table, ...] = (tables.computed_traits, tables.segment_members, tables.segment_history)
"""What the segment engine derived per profile."""

T = TypeVar("T")


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _delete(conn: Connection, table: Table, where: ColumnElement[bool]) -> int:
    return int(conn.execute(delete(table).where(where)).rowcount or 0)


def _delete_in(conn: Connection, table: Table, column: Any, values: Sequence[Any]) -> int:
    return sum(_delete(conn, table, column.in_(chunk)) for chunk in chunks(values))


def delete_person(conn: Connection, person: Person, member_keys: Sequence[str]) -> dict[str, int]:
    """Delete everything the product's tables hold about ``person``; table -> rows deleted.

    The audience mirrors' rows go too: queue their removal at the destinations first
    (cdp_profiles/privacy/targets.py reads them).
    """
    counts: dict[str, int] = {}
    pids, sets = person.profile_ids, person.set_ids
    # their records: those of their sets, and those on the fast path (record_index.profile_id, no set)
    owners = ((_index.c.set_id, sets), (_index.c.profile_id, pids))
    for table in RECORD_TABLES:
        counts[table.name] = sum(
            _delete(conn, table, sa.tuple_(table.c.stream, table.c.key).in_(
                select(_index.c.stream, _index.c.key).where(column.in_(chunk))))
            for column, values in owners for chunk in chunks(values)
        )  # fmt: skip
    counts["record_index"] = sum(_delete_in(conn, _index, column, values) for column, values in owners)
    members = tables.id_set_members
    counts["id_set_members"] = _delete_in(conn, members, members.c.set_id, sets)
    id_sets = tables.id_sets
    counts["id_sets"] = _delete_in(conn, id_sets, id_sets.c.id, sets)
    identities = tables.identities
    counts["identities"] = _delete_in(conn, identities, identities.c.profile_id, pids)
    counts["merge_log"] = _delete_merges(conn, person)
    for table in PROFILE_TABLES:
        counts[table.name] = _delete_in(conn, table, table.c.profile_id, pids)
    profiles = tables.profiles
    counts["profiles"] = _delete_in(conn, profiles, profiles.c.id, pids)
    audience, pending = tables.audience_members, tables.audience_pending
    keys = list(member_keys)
    counts["audience_members"] = _delete_in(conn, audience, audience.c.member_key, keys)
    # a member staged from the person's profile record (profiles_all: its key is the profile id) goes whatever its key
    counts["audience_pending"] = _delete_in(conn, pending, pending.c.member_key, keys) + _delete_in(
        conn, pending, pending.c.record_key, pids
    )
    return counts


def _delete_merges(conn: Connection, person: Person) -> int:
    """Merge-log rows naming one of their profiles, one of their identifiers or one of their records."""
    log = tables.merge_log
    pids = person.profile_ids
    count = _delete_in(conn, log, log.c.winner, pids) + _delete_in(conn, log, log.c.loser, pids)
    count += sum(
        _delete(conn, log, sa.tuple_(log.c.identifier_type, log.c.identifier_value).in_(list(chunk)))
        for chunk in chunks(person.identifiers)
    )
    return count + _delete_in(conn, log, log.c.record, [f"{stream}|{key}" for stream, key in person.records])

