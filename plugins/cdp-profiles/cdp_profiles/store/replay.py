"""The general write path: replay whole connected components with the pure resolver.

Used for what extending a profile in place cannot decide (cdp_profiles/store/extend.py):
merges, limits, splits, records that changed their identifiers. Loads every
identifier set connected to the seeds (through shared identifiers or a shared
profile), resolves them again from scratch (cdp_profiles/identity.py), maps the
groups onto existing profile ids (the oldest keeps its id; the others are marked
merged into it and logged) and rewrites identities and traits of those profiles.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cdp_core.records import RecordKind

from cdp_profiles.identity import Identifier, IdentityConfig, Resolution, SetNode, resolve
from cdp_profiles.store import sortkey
from cdp_profiles.store.activity import promote
from cdp_profiles.store.bulk import Bulk
from cdp_profiles.store.traits import NpsAnswer, TraitRecord, Traits, compute_traits, record_traits

if TYPE_CHECKING:
    from cdp_profiles.store.profiles import Prepared

PROFILE_NS = uuid.UUID("5f0c3a4e-8d1b-4f2a-9c55-2b7e1f6d9a10")
PROFILE_COLUMNS = (
    "id",
    "founder",
    "sort_key",
    "created_at",
    "updated_at",
    "merged_into",
    "traits",
    "trait_sources",
    "settled",
)


def profile_id(founder_key: str, founder: str, attempt: int = 0) -> str:
    """A new profile's id, from its founding set: a UUIDv7 layout, time-ordered by the founder's record.

    The 48-bit millisecond timestamp is the founder's time and the other 74 bits come from
    a hash of the founding set (uuid5), so the same founding record gives the same id. A profile
    is founded by the earliest record of the person the store holds when it is made, and keeps
    its id when an earlier record arrives in a later batch (docs/store.md, "Profile ids"). The time prefix
    is for the indexes keyed by profile id (``profiles``, ``identities.profile_id``,
    ``id_sets.profile_id``): a batch founds and extends profiles of nearby times, so its writes
    land on nearby index pages instead of all over them (bench/README.md).
    """
    when = sortkey.decode(founder_key).when
    millis = 0 if when is None else max(0, int(when.timestamp() * 1000))
    digest = uuid.uuid5(PROFILE_NS, founder if attempt == 0 else f"{founder}|{attempt}").int
    value = (millis & (2**48 - 1)) << 80 | 0x7 << 76 | (digest >> 64 & 0xFFF) << 64 | 0b10 << 62 | digest & (2**62 - 1)
    return f"{value:032x}"


def new_profile_ids(db: Bulk, founders: dict[Any, tuple[str, str]], avoid: Iterable[str] = ()) -> dict[Any, str]:
    """New profiles' ids (:func:`profile_id`), by group: ``founders`` maps a group to (founder's sort key, founder).

    A profile can outlive its founder (merged, or split off by a replay) and keep the id
    derived from it: then the next derivation (founder, 1), (founder, 2), ... that no
    profile row holds is taken.
    """
    taken = set(avoid)
    ids: dict[Any, str] = {}
    pending = dict(founders)
    attempt = 0
    while pending:
        wanted = {g: profile_id(key, founder, attempt) for g, (key, founder) in pending.items()}
        profiles_t = db.keys(("id",), [(p,) for p in wanted.values()])
        taken |= {r[0] for r in db.query(f"SELECT p.id FROM {profiles_t} t {db.join} profiles p ON p.id = t.id")}
        for group, candidate in wanted.items():
            if candidate not in taken:
                taken.add(candidate)
                ids[group] = candidate
                del pending[group]
        attempt += 1
    return ids


def recompute_traits(
    db: Bulk,
    identity: IdentityConfig,
    set_to_profile: dict[str, str],
    batch: list[Prepared],
    profiles: Iterable[str] = (),
) -> dict[str, Traits]:
    """Each profile's traits from every record of its sets and its fast-path NPS answers
    (cdp_profiles/store/activity.py): the batch's from memory, older ones read back.

    :param profiles: profiles to compute besides those of ``set_to_profile``.
    """
    targets = set(set_to_profile.values()) | set(profiles)
    sets_t = db.keys(("id",), [(s,) for s in set_to_profile])
    profiles_t = db.keys(("id",), [(p,) for p in targets])
    keys_t = db.keys(("stream", "key"), [(p.record.stream, p.record.key) for p in batch])
    not_in_batch = f'LEFT JOIN {keys_t} k ON k.stream = r.stream AND k."key" = r."key" WHERE k.stream IS NULL'
    records: dict[str, list[TraitRecord]] = defaultdict(list)
    answers: dict[str, list[NpsAnswer]] = defaultdict(list)
    for p in batch:
        pid = set_to_profile.get(p.set_id)  # type: ignore[arg-type]
        if pid is None:
            continue
        if p.record.kind is RecordKind.profile:
            records[pid].append((p.sort_key, p.row["occurred_at"], p.record.stream, record_traits(p.row)))
        elif p.record.kind is RecordKind.nps_response:
            row = p.row
            answers[pid].append((p.sort_key, row["score"], row["category"], row["answered_at"], p.record.stream))
    for sid, stream, key, data, occurred in db.query(
        # a record's mapped traits, or (no mapping) its whole data: the incremental path's reading
        f'SELECT r.set_id, pr.stream, pr."key", COALESCE(pr.traits, pr.data), pr.occurred_at FROM {sets_t} t {db.join} record_index r '
        f'ON r.set_id = t.id {db.join} profile_records pr ON pr.stream = r.stream AND pr."key" = r."key" {not_in_batch}'
    ):
        when = db.read_time(occurred)
        records[set_to_profile[sid]].append((sortkey.encode(when, stream, key), when, stream, db.read_json(data)))
    for sid, stream, key, score, category, answered in db.query(
        f'SELECT r.set_id, n.stream, n."key", n.score, n.category, n.answered_at FROM {sets_t} t {db.join} record_index r '
        f'ON r.set_id = t.id {db.join} nps_responses n ON n.stream = r.stream AND n."key" = r."key" {not_in_batch}'
    ):
        when = db.read_time(answered)
        answers[set_to_profile[sid]].append((sortkey.encode(when, stream, key), score, category, when, stream))
    for pid, stream, key, score, category, answered in db.query(
        f'SELECT r.profile_id, n.stream, n."key", n.score, n.category, n.answered_at FROM {profiles_t} t {db.join} '
        f'record_index r ON r.profile_id = t.id {db.join} nps_responses n ON n.stream = r.stream AND n."key" = r."key" '
        f"{not_in_batch}"
    ):
        when = db.read_time(answered)
        answers[pid].append((sortkey.encode(when, stream, key), score, category, when, stream))
    rules = identity.traits
    return {pid: compute_traits(records.get(pid, ()), rules, answers.get(pid, ())) for pid in targets}


def sets_of(db: Bulk, profiles: Iterable[str]) -> dict[str, str]:
    """set id -> profile, for every identifier set of ``profiles`` (``ix_id_sets_profile_id``)."""
    profiles_t = db.keys(("id",), [(p,) for p in profiles])
    return {
        sid: pid
        for sid, pid in db.query(
            f"SELECT s.id, s.profile_id FROM {profiles_t} t {db.join} id_sets s ON s.profile_id = t.id"
        )
    }


@dataclass
class _ComponentSet:
    node: SetNode
    profile_id: str | None


class Replay:
    """Resolve again every component the seeds touch and write the outcome."""

    def __init__(self, db: Bulk, identity: IdentityConfig, run_id: str, now: datetime) -> None:
        self.db = db
        self.identity = identity
        self.run_id = run_id
        self.now = now

    def run(self, batch: list[Prepared], seeds: set[str], frontier: set[Identifier], seed_profiles: set[str]) -> None:
        component = self._component(seeds, frontier, seed_profiles)
        resolution = resolve([s.node for s in component.values()], self.identity.rules)
        _Apply(self.db, self.identity, component, resolution, seed_profiles, self.run_id, self.now, batch).run()

    def _component(
        self, seeds: set[str], frontier: set[Identifier], seed_profiles: set[str]
    ) -> dict[str, _ComponentSet]:
        """Every set connected to the seeds through shared identifiers or a shared profile."""
        db = self.db
        known: set[str] = set(seeds)
        seen_ids: set[Identifier] = set()
        seen_profiles: set[str] = set(seed_profiles)
        loaded: dict[str, _ComponentSet] = {}
        to_load = set(seeds) | self._sets_of_profiles(seed_profiles, known)
        while frontier or to_load:
            if frontier:
                # A set holds an identifier either as its profile's own (then the set is among
                # the owner's sets) or in a member row (an identifier its profile does not own).
                seen_ids |= frontier
                ids_t = db.keys(("type", "value"), frontier)
                found = {
                    r[0]
                    for r in db.query(
                        f"SELECT DISTINCT m.set_id FROM {ids_t} f {db.join} id_set_members m "
                        "ON m.type = f.type AND m.value = f.value"
                    )
                }
                owners = {
                    r[0]
                    for r in db.query(
                        f"SELECT DISTINCT i.profile_id FROM {ids_t} f {db.join} identities i "
                        "ON i.type = f.type AND i.value = f.value"
                    )
                }
                to_load |= found - known
                known |= found
                owners -= seen_profiles
                seen_profiles |= owners
                to_load |= self._sets_of_profiles(owners, known)
                frontier = set()
            if to_load:
                sets_t = db.keys(("id",), [(s,) for s in to_load])
                to_load = set()
                profiles: set[str] = set()
                for sid, identifiers, key, profile_id in db.query(
                    f"SELECT s.id, s.identifiers, s.sort_key, s.profile_id FROM {sets_t} t {db.join} id_sets s ON s.id = t.id"
                ):
                    ids = tuple(sorted((t, v) for t, v in db.read_json(identifiers)))
                    loaded[sid] = _ComponentSet(SetNode(sid, ids, key), profile_id)
                    frontier.update(i for i in ids if i not in seen_ids)
                    if profile_id and profile_id not in seen_profiles:
                        profiles.add(profile_id)
                seen_profiles |= profiles
                to_load = self._sets_of_profiles(profiles, known)
        return loaded

    def _sets_of_profiles(self, profiles: set[str], known: set[str]) -> set[str]:
        if not profiles:
            return set()
        promote(self.db, profiles)  # their fast-path records take part from here on, with their sets
        profiles_t = self.db.keys(("id",), [(p,) for p in profiles])
        db = self.db
        found = {r[0] for r in db.query(f"SELECT s.id FROM {profiles_t} p {db.join} id_sets s ON s.profile_id = p.id")}
        new = found - known
        known |= found
        return new


class _Apply:
    """Maps a component's resolved groups onto profile ids and rewrites what depends on them."""

    def __init__(
        self,
        db: Bulk,
        identity: IdentityConfig,
        component: dict[str, _ComponentSet],
        resolution: Resolution,
        emptied: set[str],
        run_id: str,
        now: datetime,
        batch: list[Prepared],
    ) -> None:
        self.db = db
        self.batch = batch
        self.identity = identity
        self.component = component
        self.resolution = resolution
        self.run_id = run_id
        self.now = now
        self.old_of_set = {sid: s.profile_id for sid, s in component.items() if s.profile_id}
        self.old_profiles = sorted(set(self.old_of_set.values()) | emptied)

    def run(self) -> None:
        db = self.db
        old_rows: dict[str, tuple[str, Any]] = {}
        if self.old_profiles:
            profiles_t = db.keys(("id",), [(p,) for p in self.old_profiles])
            for pid, key, created in db.query(
                f"SELECT p.id, p.sort_key, p.created_at FROM {profiles_t} t {db.join} profiles p ON p.id = t.id"
            ):
                old_rows[pid] = (key, created)
        keeper_of = self._keepers(old_rows)
        merged, dead, merge_rows = self._merged(keeper_of)
        stamp = db.time(self.now)
        set_to_profile = {s: keeper_of[g.index] for g in self.resolution.groups for s in g.sets}
        docs = recompute_traits(db, self.identity, set_to_profile, self.batch)
        contested = self._contested()
        db.upsert(
            "profiles",
            PROFILE_COLUMNS,
            [
                (
                    keeper_of[g.index],
                    g.founder,
                    g.sort_key,
                    old_rows[keeper_of[g.index]][1] if keeper_of[g.index] in old_rows else stamp,
                    stamp,
                    None,
                    db.json(docs[keeper_of[g.index]].values),
                    db.json(docs[keeper_of[g.index]].sources()),
                    g.index not in contested,
                )
                for g in self.resolution.groups
            ],
            keys=("id",),
            update=("founder", "sort_key", "updated_at", "merged_into", "traits", "trait_sources", "settled"),
        )
        if merged:
            pairs = list(merged.items())
            mark = db.mark
            db.many(
                f"UPDATE profiles SET merged_into = {mark}, updated_at = {mark} WHERE id = {mark}",
                [(w, stamp, lo) for lo, w in pairs],
            )
            # Profiles merged into a loser earlier now point at the winner: lookups stay one hop.
            db.many(
                f"UPDATE profiles SET merged_into = {mark} WHERE merged_into = {mark}", [(w, lo) for lo, w in pairs]
            )
            db.insert(
                "merge_log",
                ("at", "run_id", "winner", "loser", "identifier_type", "identifier_value", "record", "reason"),
                merge_rows,
            )
        if dead:
            db.many(f"DELETE FROM profiles WHERE id = {db.mark}", [(p,) for p in dead])
        moved = [(pid, s) for s, pid in set_to_profile.items() if self.old_of_set.get(s) != pid]
        db.many(f"UPDATE id_sets SET profile_id = {db.mark} WHERE id = {db.mark}", moved)
        profiles_t = db.keys(("id",), [(p,) for p in set(keeper_of.values()) | set(self.old_profiles)])
        self._identities(keeper_of, profiles_t)
        self._members()

    def _contested(self) -> set[int]:
        """Groups a limit acted on: an identifier of theirs stayed unlinked, theirs or another's.

        Only the others (self-contained people) may later be extended in place.
        """
        group_of = self.resolution.group_of()
        owner = {i: g.index for g in self.resolution.groups for i in g.owned}
        contested: set[int] = set()
        for set_id, identifier, _ in self.resolution.unlinked:
            contested.add(group_of[set_id])
            if identifier in owner:
                contested.add(owner[identifier])
        return contested

    def _keepers(self, old_rows: dict[str, tuple[str, Any]]) -> dict[int, str]:
        claimed: set[str] = set()
        keeper_of: dict[int, str] = {}
        fresh: dict[int, tuple[str, str]] = {}
        for group in self.resolution.groups:
            olds = {self.old_of_set[s] for s in group.sets if s in self.old_of_set}
            founder_old = self.old_of_set.get(group.founder)
            if founder_old is not None and founder_old not in claimed:
                keeper = founder_old
            else:
                free = sorted(
                    (p for p in olds if p not in claimed and p in old_rows), key=lambda p: (old_rows[p][0], p)
                )
                if not free:
                    fresh[group.index] = (group.sort_key, group.founder)
                    continue
                keeper = free[0]
            claimed.add(keeper)
            keeper_of[group.index] = keeper
        for index, pid in new_profile_ids(self.db, fresh, avoid=claimed | set(old_rows)).items():
            claimed.add(pid)
            keeper_of[index] = pid
        return keeper_of

    def _merged(self, keeper_of: dict[int, str]) -> tuple[dict[str, str], list[str], list[tuple[Any, ...]]]:
        claimed = set(keeper_of.values())
        group_of = self.resolution.group_of()
        by_index = {g.index: g for g in self.resolution.groups}
        merged: dict[str, str] = {}
        dead: list[str] = []
        rows: list[tuple[Any, ...]] = []
        for profile_id in self.old_profiles:
            if profile_id in claimed:
                continue
            its_sets = [s for s, p in self.old_of_set.items() if p == profile_id]
            counts: dict[int, int] = defaultdict(int)
            for s in its_sets:
                if s in group_of:
                    counts[group_of[s]] += 1
            if not counts:
                dead.append(profile_id)  # every record it had now belongs elsewhere or is gone
                continue
            target = max(counts, key=lambda g: (counts[g], -g))
            merged[profile_id] = keeper_of[target]
            rows.append(self._merge_row(profile_id, keeper_of[target], set(by_index[target].sets), its_sets))
        return merged, dead, rows

    def _merge_row(self, loser: str, winner: str, in_group: set[str], loser_sets: list[str]) -> tuple[Any, ...]:
        loser_ids = {i for s in loser_sets if s in self.component for i in self.component[s].node.identifiers}
        merges = self.resolution.merges
        link = next(
            (mg for mg in merges if mg.set_id in in_group and mg.via in loser_ids),
            next((mg for mg in merges if mg.set_id in in_group), None),
        )
        via = link.via if link else None
        record = (
            sortkey.record_of(self.component[link.set_id].node.sort_key)
            if link and link.set_id in self.component
            else None
        )
        reason = (
            f"{via[0]} {via[1]!r} on record {record} belongs to both profiles"
            if via
            else "profiles recomputed into one person"
        )
        return (
            self.db.time(self.now),
            self.run_id,
            winner,
            loser,
            via[0] if via else None,
            via[1] if via else None,
            record,
            reason,
        )

    def _members(self) -> None:
        """Member rows for the component's sets: the identifiers a set holds that its profile does not own.

        An identifier the set's own profile owns needs no row: the replay reaches the set through
        ``identities`` and the owner's sets. Most sets have no member row at all.
        """
        db = self.db
        mark = db.mark
        db.many(
            f"DELETE FROM id_set_members WHERE type = {mark} AND value = {mark} AND set_id = {mark}",
            [(t, v, sid) for sid, s in self.component.items() for t, v in s.node.identifiers],
        )
        rows = [
            (t, v, sid)
            for group in self.resolution.groups
            for sid in group.sets
            for t, v in self.component[sid].node.identifiers
            if (t, v) not in group.owned
        ]
        db.insert("id_set_members", ("type", "value", "set_id"), rows)

    def _identities(self, keeper_of: dict[int, str], profiles_t: str) -> None:
        db = self.db
        db.execute(f"DELETE FROM identities WHERE profile_id IN (SELECT id FROM {profiles_t})")
        rows = []
        for group in self.resolution.groups:
            for (type_name, value), sid in group.owned.items():
                origin = self.component[sid].node.sort_key
                rows.append((type_name, value, keeper_of[group.index], sortkey.stream_of(origin), origin))
        db.upsert("identities", ("type", "value", "profile_id", "source", "first_seen"), rows, keys=("type", "value"))
