"""Writes batches into the profile store and keeps profiles resolved, in one transaction per batch.

Before the transaction, a record with a value the databases cannot hold (a NUL byte, a
non-finite number, an amount beyond ``NUMERIC(18,4)``; cdp_profiles/store/limits.py) is
quarantined with the field named, so it never fails the batch. Then per batch, set-based
(a few statements per table, never one per record):

1. pick the events, orders and NPS answers whose identifiers all belong to one settled
   profile: they take the activity fast path (cdp_profiles/store/activity.py), stored
   with that profile's id and no identifier set;
2. store each record as it came, keyed by (stream, key) (re-delivery updates);
3. drop identifier sets no record uses any more (a record changed its identifiers);
4. extend settled profiles in place, or found new ones, where the outcome of a
   replay is known without running it (cdp_profiles/store/extend.py);
5. replay the rest, whole connected components, with the pure resolver
   (cdp_profiles/store/replay.py, cdp_profiles/identity.py).

Both paths give what a replay of all records in canonical order gives, so the
result does not depend on batch size or record order (tests/test_identity.py).
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from cdp_core.records import Record, RecordKind
from cdp_core.store.checkpoint import Checkpoint
from cdp_core.store.transaction import write_transaction
from cdp_core.timeutil import as_utc, utc_now
from sqlalchemy import Engine

from cdp_profiles.identifiers import IdentifierNormalizer
from cdp_profiles.identity import Identifier, IdentityConfig
from cdp_profiles.store import activity, deletions, sortkey
from cdp_profiles.store.activity import Stored
from cdp_profiles.store.bulk import Bulk
from cdp_profiles.store.extend import Extend
from cdp_profiles.store.kinds import KindError, row_for, utc
from cdp_profiles.store.limits import amount_problem, data_json, record_problem, text_problem
from cdp_profiles.store.replay import Replay
from cdp_profiles.store.schema import WRITE_LOCK

__all__ = [
    "ANONYMOUS_KINDS",
    "KIND_TABLES",
    "STALE_DELETION",
    "UNKNOWN_DELETION",
    "Prepared",
    "ProfileWriter",
    "set_id",
]

STALE_DELETION = "a deletion older than the stored version of its record: the record is kept"
UNKNOWN_DELETION = "a deletion of a record the store does not hold: nothing to delete"

log = logging.getLogger("cdp.profiles.store")

ANONYMOUS_KINDS = frozenset({RecordKind.event, RecordKind.order, RecordKind.nps_response})
"""Kinds that still count without a person: an anonymous NPS answer is part of the score."""

KIND_TABLES: dict[RecordKind, tuple[str, tuple[str, ...]]] = {
    RecordKind.profile: ("profile_records", ("data", "traits", "occurred_at")),
    RecordKind.event: ("events", ("name", "properties", "occurred_at")),
    RecordKind.order: ("orders", ("order_id", "amount", "currency", "status", "items", "occurred_at")),
    RecordKind.nps_response: ("nps_responses", ("score", "category", "comment", "survey", "channel", "answered_at")),
    RecordKind.consent: ("consents", ("purpose", "status", "source", "occurred_at")),
}
_JSON = {"data", "traits", "properties", "items"}
_TIME = {"occurred_at", "answered_at"}


def _older(when: datetime | None, than: datetime | None) -> bool:
    """Strictly older; a version without a time is never older (nothing to compare)."""
    if when is None or than is None:
        return False
    return as_utc(when) < as_utc(than)


def _key(prepared: Prepared) -> tuple[str, str]:
    return prepared.record.stream, prepared.record.key


def _kind_rows(db: Bulk, columns: tuple[str, ...], items: list[tuple[Prepared, Any]]) -> list[tuple[Any, ...]]:
    """The kind table's rows: (stream, key, *columns) of each prepared record with its stored time.

    The time column (the record's time, as ``record_index`` has it) is converted once per record,
    and the record's data, when the column is the data itself, stored as the JSON the limits check
    made. With the columns' handling worked out once per batch, not per record, preparing and
    building the rows of bench/ingest.py's 100,000 persons took ~15 % less CPU (2.6 -> 2.2 s of the
    persons graph, 3.0 -> 2.6 s of the activity graph; bench/README.md, "ingest.py").
    """
    get = itemgetter(*columns)  # every kind has more than one column: a tuple
    json_at = [i + 2 for i, c in enumerate(columns) if c in _JSON]
    (time_at,) = [i + 2 for i, c in enumerate(columns) if c in _TIME]
    amount_at = [i + 2 for i, c in enumerate(columns) if c == "amount"]
    rows: list[tuple[Any, ...]] = []
    for p, when in items:
        record = p.record
        values = [record.stream, record.key, *get(p.row)]
        for i in json_at:
            value = values[i]
            values[i] = db.json_text(value, p.data_text) if value is record.data else db.json(value)
        values[time_at] = when
        for i in amount_at:
            values[i] = db.number(values[i])
        rows.append(tuple(values))
    return rows


def set_id(identifiers: Iterable[Identifier]) -> str:
    return _digest(sorted(identifiers))


def _digest(identifiers: Sequence[Identifier]) -> str:
    """:func:`set_id` of identifiers sorted already."""
    text = "\x1f".join([f"{t}\x1e{v}" for t, v in identifiers])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class Prepared:
    record: Record
    identifiers: tuple[Identifier, ...]
    set_id: str | None
    sort_key: str
    row: dict[str, Any]
    profile_id: str | None = None
    """Set when the record takes the activity fast path: its profile (cdp_profiles/store/activity.py)."""
    when: datetime | None = None
    """``record.occurred_at`` as naive UTC (``sortkey.naive_utc``): converted once, stored twice."""
    data_text: bytes | None = None
    """``record.data`` as JSON, from the limits check: its column stores it without dumping it again."""


class ProfileWriter:
    """The profile store's write path."""

    def __init__(self, engine: Engine, identity: IdentityConfig) -> None:
        self.engine = engine
        self.identity = identity
        self.rules = identity.rules
        self._sqlite = engine.dialect.name == "sqlite"
        self.normalize_identifier = IdentifierNormalizer(identity)
        """(normalized value or None, why not) of one identifier value."""

    # -- step 0: per-record preparation in Python ---------------------------------------
    def prepare(self, batch: list[Record], checkpoint: Checkpoint) -> list[Prepared]:
        prepared: dict[tuple[str, str], Prepared] = {}
        dropped: dict[str, list[str]] = {}
        normalize = self.normalize_identifier
        for record in batch:
            if record.deleted:  # a tombstone: only its key and time matter
                self._prepare_tombstone(record, prepared, checkpoint)
                continue
            data_text = data_json(record.data)
            problem = record_problem(record, data_text)
            if problem is not None:
                checkpoint.reject(record, f"the store cannot hold {problem}")
                continue
            identifiers: list[Identifier] = []
            problems: list[str] = []
            for type_name, value in record.identifiers.items():
                # Several values of a type (a list): each one is an identifier of its own, as if
                # several records had carried one each; a blocked or invalid one is dropped alone.
                for item in (value,) if type(value) is str else value:
                    normalized, why = normalize(type_name, item)
                    if normalized is None:
                        problems.append(f"{type_name}: {why}")
                    else:
                        identifiers.append((type_name, normalized))
            if not identifiers and record.kind not in ANONYMOUS_KINDS:
                detail = f" ({'; '.join(problems)})" if problems else ""
                checkpoint.reject(record, f"no usable identifier to link to a person{detail}")
                continue
            try:
                row = row_for(record)
            except KindError as exc:
                checkpoint.reject(record, f"{record.kind}: {exc}")
                continue
            if record.kind is RecordKind.order and (problem := amount_problem(row["amount"], self._sqlite)) is not None:
                checkpoint.reject(record, f"{record.kind}: {problem}")
                continue
            ids = tuple(sorted(set(identifiers)))
            when = sortkey.naive_utc(record.occurred_at)
            try:
                key = sortkey.encode(when, record.stream, record.key)
            except sortkey.SortKeyError as exc:
                checkpoint.reject(record, str(exc))
                continue
            if record.kind is RecordKind.profile and record.trait_map is not None:
                row["traits"] = self._mapped_traits(record, dropped)
            # Two versions of a record in the batch: the newer one the store can hold wins (a tie: the
            # later), as it would had they come in two batches (see _write).
            seen = prepared.get((record.stream, record.key))
            if seen is None or not _older(record.occurred_at, seen.record.occurred_at):
                prepared[(record.stream, record.key)] = Prepared(
                    record, ids, _digest(ids) if ids else None, key, row, None, when, data_text
                )
        for message, keys in dropped.items():
            checkpoint.warn(message, len(keys))
            log.warning("%s (%d record(s), e.g. %s)", message, len(keys), ", ".join(keys[:3]))
        return list(prepared.values())

    @staticmethod
    def _prepare_tombstone(record: Record, prepared: dict[tuple[str, str], Prepared], checkpoint: Checkpoint) -> None:
        if (problem := text_problem(record.key)) is not None:
            checkpoint.reject(record, f"the store cannot hold key: {problem}")
            return
        try:
            key = sortkey.encode(record.occurred_at, record.stream, record.key)
        except sortkey.SortKeyError as exc:
            checkpoint.reject(record, str(exc))
            return
        seen = prepared.get((record.stream, record.key))
        if seen is None or not _older(record.occurred_at, seen.record.occurred_at):
            prepared[(record.stream, record.key)] = Prepared(record, (), None, key, {})

    @staticmethod
    def _mapped_traits(record: Record, dropped: dict[str, list[str]]) -> dict[str, Any]:
        """The record's traits by its stream's mapping. A value not of its trait's type sets no trait: the
        record is stored whole all the same, and the problem is counted on the run (message -> record keys)."""
        assert record.trait_map is not None
        traits, problems = record.trait_map.apply(record.data)
        for problem in problems:
            dropped.setdefault(f"{record.stream}: {problem.message()}", []).append(record.key)
        return traits

    # -- the transaction ---------------------------------------------------------------
    def write(self, batch: list[Record], checkpoint: Checkpoint) -> None:
        prepared = self.prepare(batch, checkpoint)
        # BEGIN IMMEDIATE on SQLite: the batch reads the store before it writes, and a commit of
        # another connection in between (the lease heartbeat) would fail its first write. On
        # PostgreSQL WRITE_LOCK: another writer (cdp serve's graph beside a sync) must not found a
        # profile for the same person, or merge one this batch extends, between our reads and writes.
        with write_transaction(self.engine, lock=WRITE_LOCK) as conn:
            if prepared:
                self._write(Bulk(conn), prepared, checkpoint)
            if checkpoint.commit_by is None or checkpoint.commit_by == checkpoint.node:
                checkpoint.write(conn)

    def _write(self, db: Bulk, prepared: list[Prepared], checkpoint: Checkpoint) -> None:
        now, run_id = utc_now(), checkpoint.run_id
        db.index_joins()
        old = self._old_records(db, prepared)
        # A version older than the one stored (a webhook delivered late, a pull behind a push)
        # does not replace it: the store keeps the newest version of each record, whatever the
        # order they arrive in.
        fresh = prepared
        if old:  # most batches are new records only
            fresh = [
                p
                for p in prepared
                if (before := old.get((p.record.stream, p.record.key))) is None
                or not _older(p.record.occurred_at, db.read_time(before.occurred_at))
            ]
        if len(fresh) != len(prepared):
            kept = {id(p) for p in fresh}
            stale = [p for p in prepared if id(p) not in kept]
            versions = sum(1 for p in stale if not p.record.deleted)
            if versions:
                checkpoint.warn("an older version of a stored record: the newer one is kept", versions)
            if len(stale) - versions:
                checkpoint.warn(STALE_DELETION, len(stale) - versions)
            prepared = fresh
            if not prepared:
                return
        tombstones = [p for p in prepared if p.record.deleted]
        if tombstones:
            # A tombstone marked missing_ok may name a record never synced (Record.missing_ok): no warning.
            unknown = sum(1 for p in tombstones if _key(p) not in old and not p.record.missing_ok)
            if unknown:
                checkpoint.warn(UNKNOWN_DELETION, unknown)
            deletions.delete_records(db, [_key(p) for p in tombstones if _key(p) in old], run_id, now)
            prepared = [p for p in prepared if not p.record.deleted]
        known = activity.split(db, prepared, old)
        self._store_records(db, prepared, run_id, now)
        activity.apply(db, self.identity, [p for p in prepared if p.profile_id is not None], known, now)
        orphan_ids, reopened = self._reopen(db, [*prepared, *tombstones], old)
        resolve = [p for p in prepared if p.profile_id is None]
        if not any(p.set_id for p in resolve) and not reopened and not orphan_ids:
            return  # only anonymous and fast-path records: nobody to resolve
        old_sets = {k: stored.set_id for k, stored in old.items()}
        rest = Extend(db, self.identity, now).run(resolve, old_sets, orphan_ids, reopened)
        if rest or orphan_ids or reopened:
            self._store_sets(db, rest)
            seeds = {p.set_id for p in rest if p.set_id is not None}
            frontier = {i for p in rest for i in p.identifiers} | orphan_ids
            Replay(db, self.identity, run_id, now).run(rest, seeds, frontier, reopened)

    def _old_records(self, db: Bulk, prepared: list[Prepared]) -> dict[tuple[str, str], Stored]:
        """(stream, key) -> what the store holds of the batch's records it has already."""
        keys_t = db.keys(("stream", "key"), [(p.record.stream, p.record.key) for p in prepared])
        rows = db.query(
            f'SELECT r.stream, r."key", r.set_id, r.occurred_at, r.profile_id, r.identifiers FROM {keys_t} k '
            f'{db.join} record_index r ON r.stream = k.stream AND r."key" = k."key"'
        )
        return {(stream, key): Stored(*rest) for stream, key, *rest in rows}

    def _store_records(self, db: Bulk, prepared: list[Prepared], run_id: str, now: datetime) -> None:
        stamp = db.time(now)
        times = [db.naive_time(p.when) for p in prepared]
        db.upsert(
            "record_index",
            ("stream", "key", "kind", "set_id", "profile_id", "identifiers", "occurred_at", "updated_at", "run_id"),
            [
                (
                    p.record.stream,
                    p.record.key,
                    p.record.kind.value,
                    p.set_id if p.profile_id is None else None,
                    p.profile_id,
                    None if p.profile_id is None else db.json(p.identifiers),  # pairs: JSON arrays, as lists
                    when,
                    stamp,
                    run_id,
                )
                for p, when in zip(prepared, times, strict=True)
            ],
            keys=("stream", "key"),
        )
        by_kind: dict[RecordKind, list[tuple[Prepared, Any]]] = defaultdict(list)
        for p, when in zip(prepared, times, strict=True):
            by_kind[p.record.kind].append((p, when))
        for kind, items in by_kind.items():
            table, columns = KIND_TABLES[kind]
            db.upsert(table, ("stream", "key", *columns), _kind_rows(db, columns, items), keys=("stream", "key"))

    def _store_sets(self, db: Bulk, prepared: list[Prepared]) -> None:
        """The replay's sets, before it runs: it loads them with the rest of their component (their
        member rows are the replay's to write, once it knows who owns what)."""
        sets: dict[str, tuple[tuple[Identifier, ...], str]] = {}
        for p in prepared:
            if p.set_id is None:
                continue
            known = sets.get(p.set_id)
            if known is None or p.sort_key < known[1]:
                sets[p.set_id] = (p.identifiers, p.sort_key)
        db.upsert(
            "id_sets",
            ("id", "identifiers", "sort_key", "profile_id"),
            [(sid, db.json([list(i) for i in ids]), key, None) for sid, (ids, key) in sets.items()],
            keys=("id",),
            update=(),
            assign={"sort_key": db.least('"id_sets"."sort_key"', 'excluded."sort_key"')},
        )

    def _reopen(
        self, db: Bulk, prepared: list[Prepared], old: dict[tuple[str, str], Stored]
    ) -> tuple[set[Identifier], set[str]]:
        """Sets a re-delivered record left, or whose earliest record moved in time: set them right.

        A set no record uses any more is removed; a set whose earliest record changed gets
        that record's sort key (which may be later: a replay must not see the old one).
        Returns the removed sets' identifiers and every profile that must be replayed
        because one of its sets lost a record or changed its place in the order, or a
        fast-path record of it came again off the fast path (changed, or deleted).
        """
        lost: set[str] = set()
        retimed: set[str] = set()
        left_fast: set[str] = set()
        for p in prepared:
            before = old.get((p.record.stream, p.record.key))
            if before is None:
                continue
            if before.set_id is None:
                if before.profile_id is not None and p.profile_id is None:
                    left_fast.add(before.profile_id)
                continue
            if before.set_id != p.set_id or p.profile_id is not None:
                lost.add(before.set_id)
            elif db.read_time(before.occurred_at) != utc(p.record.occurred_at):
                retimed.add(before.set_id)
        candidates = lost | retimed
        if not candidates:
            return set(), left_fast
        sets_t = db.keys(("id",), [(s,) for s in candidates])
        earliest: dict[str, str] = {}
        for sid, stream, key, occurred in db.query(
            f'SELECT r.set_id, r.stream, r."key", r.occurred_at FROM {sets_t} t {db.join} record_index r ON r.set_id = t.id'
        ):
            k = sortkey.encode(db.read_time(occurred), stream, key)
            if sid not in earliest or k < earliest[sid]:
                earliest[sid] = k
        stored = {
            sid: (key, pid)
            for sid, key, pid in db.query(
                f"SELECT s.id, s.sort_key, s.profile_id FROM {sets_t} t {db.join} id_sets s ON s.id = t.id"
            )
        }
        reopened = {pid for sid, (key, pid) in stored.items() if pid and (sid in lost or earliest.get(sid) != key)}
        reopened |= left_fast
        db.many(
            f"UPDATE id_sets SET sort_key = {db.mark} WHERE id = {db.mark}",
            [(earliest[sid], sid) for sid, (key, _) in stored.items() if sid in earliest and earliest[sid] != key],
        )
        orphans = candidates - set(earliest)
        if not orphans:
            return set(), reopened
        sets_t = db.keys(("id",), [(s,) for s in orphans])
        members = [
            (t, v, sid)
            for sid, identifiers in db.query(
                f"SELECT s.id, s.identifiers FROM {sets_t} t {db.join} id_sets s ON s.id = t.id"
            )
            for t, v in db.read_json(identifiers)
        ]
        mark = db.mark
        db.many(f"DELETE FROM id_set_members WHERE type = {mark} AND value = {mark} AND set_id = {mark}", members)
        db.execute(f"DELETE FROM id_sets WHERE id IN (SELECT id FROM {sets_t})")
        identifiers = {(t, v) for t, v, _ in members}
        return identifiers, reopened
