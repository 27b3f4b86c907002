"""The activity fast path: events, orders and NPS answers of a known person, stored without resolution.

Most activity records carry identifiers that all belong to one profile already (an order with
the customer's id and email, an event with a known email). For such a record the replay's
outcome is known without running it, by the reasoning of cdp_profiles/store/extend.py: the
profile is *settled* (no limit ever acted in its component), so a set whose identifiers are all
its own joins it and changes nothing but, when the record is earlier than every record seen
so far, the first sighting of an identifier (``identities.first_seen``/``source``) and the
profile's founder; an NPS answer also updates the NPS traits.

So :func:`split` picks those records, and :func:`apply` stores them with their profile's id
and identifiers (``record_index.profile_id`` and ``.identifiers``) instead of an identifier
set: no ``id_sets`` row, no member row, no component to load. What it changes is written
set-based: a few statements per batch.

A replay that later reaches that profile (a merge, a split, a deletion, a limit) first calls
:func:`promote`, which gives its fast-path records their sets (the same set ids, content hashes,
they would have had), so they take part in the resolution like any record. The result is what a
replay of all records in canonical order gives (plugins/cdp-profiles/tests/test_identity.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from cdp_core.records import RecordKind

from cdp_profiles.identity import Identifier, IdentityConfig
from cdp_profiles.store import sortkey
from cdp_profiles.store.bulk import Bulk
from cdp_profiles.store.kinds import utc
from cdp_profiles.store.traits import NpsAnswer, Traits, merge_traits

if TYPE_CHECKING:
    from cdp_profiles.store.profiles import Prepared

ACTIVITY_KINDS = frozenset({RecordKind.event, RecordKind.order, RecordKind.nps_response})


class Stored(NamedTuple):
    """What the store holds of a record the batch carries again (``record_index``)."""

    set_id: str | None
    occurred_at: Any
    profile_id: str | None
    """Set for a record on the fast path (then ``set_id`` is None)."""
    identifiers: Any
    """A fast-path record's identifiers as stored (JSON)."""

    @property
    def fast(self) -> bool:
        return self.profile_id is not None


def _candidate(p: Prepared, before: Stored | None, db: Bulk) -> bool:
    """Could ``p`` take the fast path? New activity records with identifiers, and re-deliveries of a
    fast-path event or order with the same time and identifiers (anything else that changed may have
    decided a first sighting or the founder: the replay works it out)."""
    if p.record.kind not in ACTIVITY_KINDS or not p.identifiers:
        return False
    if before is None:
        return True
    if not before.fast or p.record.kind is RecordKind.nps_response:
        return False  # a record with a set stays in the graph; a changed answer changes traits
    same_ids = sorted(tuple(i) for i in db.read_json(before.identifiers)) == list(p.identifiers)
    return same_ids and db.read_time(before.occurred_at) == utc(p.record.occurred_at)


@dataclass
class Known:
    """What :func:`split` read of the store: each identifier's first sighting, each owner's sort key."""

    first_seen: dict[Identifier, str | None] = field(default_factory=dict)
    sort_key: dict[str, str] = field(default_factory=dict)


def split(db: Bulk, prepared: list[Prepared], old: dict[tuple[str, str], Stored]) -> Known:
    """Mark the batch's records that take the fast path: ``p.profile_id`` is then their profile."""
    known = Known()
    candidates = [p for p in prepared if _candidate(p, old.get((p.record.stream, p.record.key)), db)]
    if not candidates:
        return known
    ids_t = db.keys(("type", "value"), {i for p in candidates for i in p.identifiers})
    holder: dict[Identifier, str] = {}
    for type_name, value, profile_id, first_seen, sort_key in db.query(
        f"SELECT i.type, i.value, i.profile_id, i.first_seen, p.sort_key FROM {ids_t} f {db.join} identities i "
        f"ON i.type = f.type AND i.value = f.value {db.join} profiles p ON p.id = i.profile_id WHERE p.settled"
    ):
        holder[(type_name, value)] = profile_id
        known.first_seen[(type_name, value)] = first_seen
        known.sort_key[profile_id] = sort_key
    for p in candidates:
        owners = {holder.get(i) for i in p.identifiers}
        if len(owners) == 1:
            owner = owners.pop()
            if owner is not None:
                p.profile_id = owner
    return known


def apply(db: Bulk, identity: IdentityConfig, fast: list[Prepared], known: Known, now: datetime) -> None:
    """What the fast-path records change besides their own rows: first sightings, founders, NPS traits.

    Their ``record_index`` rows are written with the rest of the batch (cdp_profiles/store/profiles.py).
    """
    if not fast:
        return
    # Only a record earlier than what the store has seen moves a first sighting or a founder.
    first: dict[Identifier, str] = {}
    founders: dict[str, tuple[str, str]] = {}
    answers: dict[str, list[NpsAnswer]] = defaultdict(list)
    for p in fast:
        assert p.profile_id is not None and p.set_id is not None
        key = p.sort_key
        for identifier in p.identifiers:
            seen = first.get(identifier, known.first_seen[identifier])
            if seen is not None and key < seen:
                first[identifier] = key
        if key < founders.get(p.profile_id, (known.sort_key[p.profile_id], ""))[0]:
            founders[p.profile_id] = (key, p.set_id)
        if p.record.kind is RecordKind.nps_response:
            row = p.row
            answers[p.profile_id].append((key, row["score"], row["category"], row["answered_at"], p.record.stream))
    mark = db.mark
    db.many(
        f"UPDATE identities SET first_seen = {mark}, source = {mark} WHERE type = {mark} AND value = {mark}",
        [(key, sortkey.stream_of(key), t, v) for (t, v), key in first.items()],
    )
    docs = _nps_traits(db, identity, answers)
    stamp = db.time(now)
    db.many(
        f"UPDATE profiles SET founder = {mark}, sort_key = {mark}, updated_at = {mark} WHERE id = {mark}",
        [(sid, key, stamp, pid) for pid, (key, sid) in founders.items() if pid not in docs],
    )
    db.many(
        f"UPDATE profiles SET founder = COALESCE({mark}, founder), sort_key = COALESCE({mark}, sort_key), "
        f"updated_at = {mark}, traits = {mark}, trait_sources = {mark} WHERE id = {mark}",
        [
            (*founders.get(pid, (None, None))[::-1], stamp, db.json(doc.values), db.json(doc.sources()), pid)
            for pid, doc in docs.items()
        ],
    )


def _nps_traits(db: Bulk, identity: IdentityConfig, answers: dict[str, list[NpsAnswer]]) -> dict[str, Traits]:
    """The NPS traits of the profiles that got an answer: merged into the stored ones, or recomputed."""
    from cdp_profiles.store.replay import recompute_traits, sets_of

    if not answers:
        return {}
    profiles_t = db.keys(("id",), [(pid,) for pid in answers])
    stored = {
        pid: (values, sources)
        for pid, values, sources in db.query(
            f"SELECT p.id, p.traits, p.trait_sources FROM {profiles_t} t {db.join} profiles p ON p.id = t.id"
        )
    }
    docs: dict[str, Traits] = {}
    recompute: set[str] = set()
    for pid, items in answers.items():
        values, sources = stored[pid]
        merged = merge_traits(Traits.load(db.read_json(values), db.read_json(sources)), (), identity.traits, items)
        if merged is None:
            recompute.add(pid)
        else:
            docs[pid] = merged
    if recompute:
        docs.update(recompute_traits(db, identity, sets_of(db, recompute), [], profiles=recompute))
    return docs


def promote(db: Bulk, profiles: Iterable[str]) -> None:
    """Give the fast-path records of ``profiles`` their identifier sets, before a replay reaches them.

    A set another record already made keeps its row (and its profile); a new one starts with the
    record's profile, as if it had been written the slow way.
    """
    from cdp_profiles.store.profiles import set_id

    profiles_t = db.keys(("id",), [(pid,) for pid in profiles])
    rows = db.query(
        f'SELECT r.stream, r."key", r.identifiers, r.occurred_at, r.profile_id FROM {profiles_t} t '
        f"{db.join} record_index r ON r.profile_id = t.id"
    )
    if not rows:
        return
    sets: dict[str, tuple[list[list[str]], str, str]] = {}
    moved: list[tuple[str, str, str]] = []
    for stream, key, identifiers, occurred, profile_id in rows:
        ids = sorted((t, v) for t, v in db.read_json(identifiers))
        sid = set_id(ids)
        when = sortkey.encode(db.read_time(occurred), stream, key)
        known = sets.get(sid)
        if known is None or when < known[1]:
            sets[sid] = ([list(i) for i in ids], when, profile_id)
        moved.append((sid, stream, key))
    db.upsert(
        "id_sets",
        ("id", "identifiers", "sort_key", "profile_id"),
        [(sid, db.json(ids), when, pid) for sid, (ids, when, pid) in sets.items()],
        keys=("id",),
        update=(),
        assign={"sort_key": db.least('"id_sets"."sort_key"', 'excluded."sort_key"')},
    )
    mark = db.mark
    with db.zeroing():  # the row and index entry that named the profile are rewritten
        db.many(
            f"UPDATE record_index SET set_id = {mark}, profile_id = NULL, identifiers = NULL "
            f'WHERE stream = {mark} AND "key" = {mark}',
            moved,
        )
