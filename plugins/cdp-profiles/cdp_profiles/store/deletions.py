"""Deleting records a source says were deleted at the vendor (tombstones: ``Record.deleted``).

``delete_records`` removes each record ``(stream, key)`` from its kind's table and from
``record_index`` by primary key (one executemany per table), and writes a
``record_deleted`` entry in ``merge_log`` for each deleted record that belonged to a person.
What follows is the write path's usual work (cdp_profiles/store/profiles.py): the record's
identifier set lost a record, so a set no record uses any more is removed, and the person is
replayed from the records that remain: identifiers no remaining record carries are released,
traits are computed again from the remaining records, and a person with no record left is
removed. See docs/store.md, "Deleted records".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cdp_profiles.store.bulk import Bulk
from cdp_profiles.store.owners import OWNER_JOIN, OWNER_SQL

DELETED_REASON = "record_deleted"
"""How a deletion's ``merge_log`` entry starts its ``reason`` (winner and loser: the person it belonged to)."""

_TABLES = ("profile_records", "events", "orders", "nps_responses", "consents", "record_index")


def delete_records(db: Bulk, keys: Sequence[tuple[str, str]], run_id: str, now: datetime) -> None:
    """Remove the stored records ``(stream, key)`` (each known to the store) and log each deletion."""
    if not keys:
        return
    keys_t = db.keys(("stream", "key"), keys)
    owners = db.query(
        f'SELECT r.stream, r."key", {OWNER_SQL} FROM {keys_t} k {db.join} record_index r '
        f'ON r.stream = k.stream AND r."key" = k."key" {OWNER_JOIN} '
        f"WHERE {OWNER_SQL} IS NOT NULL"
    )
    stamp = db.time(now)
    db.insert(
        "merge_log",
        ("at", "run_id", "winner", "loser", "identifier_type", "identifier_value", "record", "reason"),
        [
            (
                stamp,
                run_id,
                pid,
                pid,
                None,
                None,
                f"{stream}|{key}",
                f"{DELETED_REASON}: the source deleted {stream}|{key}",
            )
            for stream, key, pid in owners
        ],
    )
    mark = db.mark
    with db.zeroing():  # a fast-path record names its profile: no trace of it may outlive a later forget
        for table in _TABLES:  # by primary key, one executemany per table (as the write path deletes member rows)
            db.many(f'DELETE FROM {table} WHERE stream = {mark} AND "key" = {mark}', keys)
