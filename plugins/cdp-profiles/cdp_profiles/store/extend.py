"""The fast write path: new records that extend a settled profile, or found a new one, in place.

Replaying a whole component (cdp_profiles/store/replay.py) is always right but costs a
reload of everything connected. Most records need none of it: their identifiers
are all new, or all owned by one profile that resolved alone. For those, the
replay's outcome is known without running it:

    a *settled* profile G (its component resolved into G alone: no limit ever kept
    an identifier of it apart, so every set carrying one of its identifiers is G's)
    plus new sets whose identifiers are G's own or never seen, with every per-type
    limit kept by the union, replays into one person: G, founded by the earliest
    set, each identifier owned by the earliest set carrying it.

That is because with no limit reached no step of the replay can refuse a join,
so the replay forms connected components, whatever the order. The batch is split
into components of its own (sets sharing identifiers, or an owner); a component
that touches two profiles, an unsettled profile, an identifier another set holds
unlinked, a record that changed its identifiers, or a limit goes to the replay.
Traits follow the same way: merged into the stored document (cdp_profiles/store/traits.py)
unless a record is a re-delivery, which recomputes that profile's document.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cdp_core.records import RecordKind

from cdp_profiles.identity import Identifier, IdentityConfig
from cdp_profiles.store import sortkey
from cdp_profiles.store.bulk import Bulk
from cdp_profiles.store.replay import PROFILE_COLUMNS, new_profile_ids, recompute_traits, sets_of
from cdp_profiles.store.traits import NpsAnswer, TraitRecord, Traits, merge_traits, record_traits

if TYPE_CHECKING:
    from cdp_profiles.store.profiles import Prepared

NEW = object()
"""old_sets' answer for a record the store has not seen."""


@dataclass
class _Component:
    sets: list[str] = field(default_factory=list)
    records: list[Prepared] = field(default_factory=list)
    owner: str | None = None
    slow: bool = False
    redelivered: bool = False


@dataclass
class _Owner:
    founder: str
    sort_key: str
    settled: bool
    counts: dict[str, int] = field(default_factory=dict)


class Extend:
    """Applies the batch's simple components and hands back the records the replay must take."""

    def __init__(self, db: Bulk, identity: IdentityConfig, now: datetime) -> None:
        self.db = db
        self.identity = identity
        self.rules = identity.rules
        self.now = now

    def run(
        self,
        prepared: list[Prepared],
        old_sets: dict[tuple[str, str], str | None],
        orphan_ids: set[Identifier],
        orphan_profiles: set[str],
    ) -> list[Prepared]:
        sets: dict[str, tuple[tuple[Identifier, ...], str]] = {}
        by_set: dict[str, list[Prepared]] = defaultdict(list)
        for p in prepared:
            if p.set_id is None:
                continue
            by_set[p.set_id].append(p)
            known = sets.get(p.set_id)
            if known is None or p.sort_key < known[1]:
                sets[p.set_id] = (p.identifiers, p.sort_key)
        if not sets:
            return []
        holder_of, unlinked = self._identifiers({i for ids, _ in sets.values() for i in ids})
        stored = self._stored_sets(set(sets))
        owners = self._owners({h[0] for h in holder_of.values()})
        components = self._components(sets, by_set, holder_of)
        slow: list[Prepared] = []
        fast: list[_Component] = []
        for comp in components:
            self._classify(comp, sets, holder_of, unlinked, stored, owners, old_sets, orphan_ids, orphan_profiles)
            if comp.slow:
                slow.extend(comp.records)
            else:
                fast.append(comp)
        if fast:
            self._apply(fast, sets, holder_of, stored, owners)
        return slow

    # -- what the store knows ----------------------------------------------------------
    def _identifiers(self, identifiers: set[Identifier]) -> tuple[dict[Identifier, tuple[str, str]], set[Identifier]]:
        """identifier -> (owning profile, first_seen); and the ones a set carries without an owner."""
        db = self.db
        ids_t = db.keys(("type", "value"), identifiers)
        holder: dict[Identifier, tuple[str, str]] = {}
        unlinked: set[Identifier] = set()
        for type_name, value, profile_id, first_seen in db.query(
            f"SELECT f.type, f.value, i.profile_id, i.first_seen FROM {ids_t} f "
            "LEFT JOIN identities i ON i.type = f.type AND i.value = f.value "
            "WHERE i.profile_id IS NOT NULL OR EXISTS "
            "(SELECT 1 FROM id_set_members m WHERE m.type = f.type AND m.value = f.value)"
        ):
            if profile_id is None:
                unlinked.add((type_name, value))
            else:
                holder[(type_name, value)] = (profile_id, first_seen)
        return holder, unlinked

    def _stored_sets(self, ids: set[str]) -> dict[str, tuple[str, str | None]]:
        db = self.db
        sets_t = db.keys(("id",), [(s,) for s in ids])
        return {
            sid: (key, pid)
            for sid, key, pid in db.query(
                f"SELECT s.id, s.sort_key, s.profile_id FROM {sets_t} t {db.join} id_sets s ON s.id = t.id"
            )
        }

    def _owners(self, ids: set[str]) -> dict[str, _Owner]:
        if not ids:
            return {}
        db = self.db
        profiles_t = db.keys(("id",), [(p,) for p in ids])
        owners = {
            pid: _Owner(founder, key, bool(settled))
            for pid, founder, key, settled in db.query(
                f"SELECT p.id, p.founder, p.sort_key, p.settled FROM {profiles_t} t {db.join} profiles p ON p.id = t.id"
            )
        }
        for pid, type_name, count in db.query(
            f"SELECT i.profile_id, i.type, COUNT(*) FROM {profiles_t} t {db.join} identities i "
            "ON i.profile_id = t.id GROUP BY i.profile_id, i.type"
        ):
            owners[pid].counts[type_name] = count
        return owners

    # -- splitting and sorting ---------------------------------------------------------
    def _components(
        self,
        sets: dict[str, tuple[tuple[Identifier, ...], str]],
        by_set: dict[str, list[Prepared]],
        holder_of: dict[Identifier, tuple[str, str]],
    ) -> list[_Component]:
        """Sets linked by a shared identifier or a shared owner, by union-find."""
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        anchor: dict[Any, str] = {}
        for sid, (ids, _) in sets.items():
            parent.setdefault(sid, sid)
            for identifier in ids:
                holder = holder_of.get(identifier)
                link = ("p", holder[0]) if holder is not None else identifier
                other = anchor.setdefault(link, sid)
                if other != sid:
                    a, b = find(other), find(sid)
                    if a != b:
                        parent[b] = a
        groups: dict[str, _Component] = {}
        for sid in sets:
            comp = groups.setdefault(find(sid), _Component())
            comp.sets.append(sid)
            comp.records.extend(by_set[sid])
        return list(groups.values())

    def _classify(
        self,
        comp: _Component,
        sets: dict[str, tuple[tuple[Identifier, ...], str]],
        holder_of: dict[Identifier, tuple[str, str]],
        unlinked: set[Identifier],
        stored: dict[str, tuple[str, str | None]],
        owners: dict[str, _Owner],
        old_sets: dict[tuple[str, str], str | None],
        orphan_ids: set[Identifier],
        orphan_profiles: set[str],
    ) -> None:
        for p in comp.records:
            old = old_sets.get((p.record.stream, p.record.key), NEW)
            if old is NEW:
                continue
            if old != p.set_id:
                comp.slow = True  # changed identifiers (or gained some): the replay works out what moved
                return
            if p.record.kind in (RecordKind.profile, RecordKind.nps_response):
                comp.redelivered = True
        holders: set[str] = set()
        fresh: dict[str, int] = defaultdict(int)
        seen: set[Identifier] = set()
        for sid in comp.sets:
            for identifier in sets[sid][0]:
                if identifier in seen:
                    continue
                seen.add(identifier)
                if identifier in unlinked or identifier in orphan_ids:
                    comp.slow = True
                    return
                holder = holder_of.get(identifier)
                if holder is None:
                    fresh[identifier[0]] += 1
                else:
                    holders.add(holder[0])
        if len(holders) > 1:
            comp.slow = True  # a merge
            return
        owner = next(iter(holders)) if holders else None
        if owner is not None:
            info = owners.get(owner)
            if info is None or not info.settled or owner in orphan_profiles:
                comp.slow = True
                return
            counts = info.counts
        else:
            counts = {}
        for sid in comp.sets:
            known = stored.get(sid)
            if known is not None and known[1] != owner:
                comp.slow = True
                return
        for type_name, added in fresh.items():
            limit = self.rules.limit(type_name)
            if limit is not None and counts.get(type_name, 0) + added > limit:
                comp.slow = True
                return
        comp.owner = owner

    # -- writing -----------------------------------------------------------------------
    def _apply(
        self,
        fast: list[_Component],
        sets: dict[str, tuple[tuple[Identifier, ...], str]],
        holder_of: dict[Identifier, tuple[str, str]],
        stored: dict[str, tuple[str, str | None]],
        owners: dict[str, _Owner],
    ) -> None:
        db = self.db
        # The effective sort key of each set: its earliest record, stored or new.
        key_of = {sid: min(ks, stored[sid][0]) if sid in stored else ks for sid, (_, ks) in sets.items()}
        founders = {}
        for index, comp in enumerate(fast):
            first = min((key_of[s], s) for s in comp.sets)
            if comp.owner is not None:
                owner = owners[comp.owner]
                first = min(first, (owner.sort_key, owner.founder))
            founders[index] = first
        ids = new_profile_ids(db, {i: founders[i] for i, c in enumerate(fast) if c.owner is None})
        stamp = db.time(self.now)
        set_rows: list[tuple[Any, ...]] = []
        identity_rows: list[tuple[str, str, str, str, str]] = []
        created: list[list[Any]] = []
        touched: list[list[Any]] = []
        merge_docs: dict[str, tuple[list[TraitRecord], list[NpsAnswer]]] = {}
        recompute: dict[str, _Component] = {}
        for index, comp in enumerate(fast):
            pid = comp.owner if comp.owner is not None else ids[index]
            founder_key, founder = founders[index]
            changed = comp.owner is None
            origin: dict[Identifier, str] = {}
            for sid in comp.sets:
                identifiers, _ = sets[sid]
                key = key_of[sid]
                known = stored.get(sid)
                if known is None:
                    set_rows.append((sid, db.json([list(i) for i in identifiers]), key, pid))
                    changed = True
                elif key < known[0]:
                    set_rows.append((sid, None, key, pid))
                    changed = True
                for identifier in identifiers:
                    if identifier not in origin or key < origin[identifier]:
                        origin[identifier] = key
            for (type_name, value), key in origin.items():
                holder = holder_of.get((type_name, value))
                if holder is None or key < holder[1]:
                    identity_rows.append((type_name, value, pid, sortkey.stream_of(key), key))
            records: list[TraitRecord] = []
            answers: list[NpsAnswer] = []
            for p in comp.records:
                if p.record.kind is RecordKind.profile:
                    records.append((p.sort_key, p.row["occurred_at"], p.record.stream, record_traits(p.row)))
                elif p.record.kind is RecordKind.nps_response:
                    nps = p.row
                    answers.append((p.sort_key, nps["score"], nps["category"], nps["answered_at"], p.record.stream))
            if comp.redelivered:
                recompute[pid] = comp
            elif records or answers:
                merge_docs[pid] = (records, answers)
            if comp.owner is None:
                created.append([pid, founder, founder_key, stamp, stamp, None, None, None, True])
            elif changed or pid in merge_docs or pid in recompute:
                touched.append([pid, founder, founder_key, stamp, None])
        comp_of = {comp.owner: comp for comp in fast if comp.owner is not None}
        docs = self._docs(merge_docs, recompute, comp_of)
        empty = Traits()
        for row in created:
            traits = docs.get(row[0], empty)
            row[6], row[7] = db.json(traits.values), db.json(traits.sources())
        for row in touched:
            doc = docs.get(row[0])
            row[4] = None if doc is None else (db.json(doc.values), db.json(doc.sources()))
        db.upsert(
            "id_sets",
            ("id", "identifiers", "sort_key", "profile_id"),
            [r for r in set_rows if r[1] is not None],
            keys=("id",),
            update=("profile_id",),
            assign={"sort_key": db.least('"id_sets"."sort_key"', 'excluded."sort_key"')},
        )
        mark = db.mark
        db.many(
            f"UPDATE id_sets SET sort_key = {mark}, profile_id = {mark} WHERE id = {mark}",
            [(key, pid, sid) for sid, identifiers, key, pid in set_rows if identifiers is None],
        )
        db.upsert(
            "identities", ("type", "value", "profile_id", "source", "first_seen"), identity_rows, keys=("type", "value")
        )
        db.insert("profiles", PROFILE_COLUMNS, [tuple(row) for row in created])
        db.many(
            f"UPDATE profiles SET founder = {mark}, sort_key = {mark}, updated_at = {mark} WHERE id = {mark}",
            [(founder, key, at, pid) for pid, founder, key, at, doc in touched if doc is None],
        )
        db.many(
            f"UPDATE profiles SET founder = {mark}, sort_key = {mark}, updated_at = {mark}, traits = {mark}, "
            f"trait_sources = {mark} WHERE id = {mark}",
            [(founder, key, at, *doc, pid) for pid, founder, key, at, doc in touched if doc is not None],
        )

    def _docs(
        self,
        merge_docs: dict[str, tuple[list[TraitRecord], list[NpsAnswer]]],
        recompute: dict[str, _Component],
        comp_of: dict[str, _Component],
    ) -> dict[str, Traits]:
        """New traits: the stored ones extended, or recomputed where a record came again."""
        db = self.db
        rules = self.identity.traits
        stored: dict[str, Traits] = {}
        existing = [(p,) for p in merge_docs if p in comp_of]  # profiles founded by this batch have no row yet
        if existing:
            profiles_t = db.keys(("id",), existing)
            stored = {
                pid: Traits.load(db.read_json(values), db.read_json(sources))
                for pid, values, sources in db.query(
                    f"SELECT p.id, p.traits, p.trait_sources FROM {profiles_t} t {db.join} profiles p ON p.id = t.id"
                )
            }
        docs: dict[str, Traits] = {}
        empty = Traits()
        for pid, (records, answers) in merge_docs.items():
            traits = merge_traits(stored.get(pid, empty), records, rules, answers)
            if traits is None:
                recompute[pid] = comp_of[pid]  # only stored traits can refuse (new ones start empty)
            else:
                docs[pid] = traits
        if recompute:
            set_to_profile = sets_of(db, recompute)
            batch: list[Prepared] = []
            for pid, comp in recompute.items():
                set_to_profile.update(dict.fromkeys(comp.sets, pid))
                batch.extend(comp.records)
            docs.update(recompute_traits(db, self.identity, set_to_profile, batch))
        return docs
