"""Writes batches into the profile store and keeps profiles resolved, in one transaction per batch.

Per batch, set-based (a few statements per table, never one per record):

1. store each record as it came, keyed by (stream, key) (re-delivery updates);
2. record its identifier set in the identity graph;
3. find the connected components the batch touches and replay them with the
   pure resolver (cdp_core/identity.py);
4. map the resolved groups onto existing profile ids (the oldest keeps its id;
   the others are marked merged into it and logged), then rewrite identities and
   traits of the affected profiles only.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from cdp_core.identity import Identifier, IdentityConfig, Resolution, SetNode, resolve
from cdp_core.records import Record, RecordKind
from cdp_core.store.bulk import Bulk
from cdp_core.store.checkpoint import Checkpoint
from cdp_core.store.kinds import KindError, row_for, utc
from cdp_core.store.traits import compute_traits

_PROFILE_NS = uuid.UUID("5f0c3a4e-8d1b-4f2a-9c55-2b7e1f6d9a10")
_E164 = re.compile(r"\+[1-9]\d{6,14}")

ANONYMOUS_KINDS = frozenset({RecordKind.event, RecordKind.order, RecordKind.nps_response})
"""Kinds that still count without a person: an anonymous NPS answer is part of the score."""

KIND_TABLES: dict[RecordKind, tuple[str, tuple[str, ...]]] = {
    RecordKind.profile: ("profile_records", ("data", "occurred_at")),
    RecordKind.event: ("events", ("name", "properties", "occurred_at")),
    RecordKind.order: ("orders", ("order_id", "amount", "currency", "status", "items", "occurred_at")),
    RecordKind.nps_response: ("nps_responses", ("score", "category", "comment", "survey", "channel", "answered_at")),
    RecordKind.consent: ("consents", ("purpose", "status", "source", "occurred_at")),
}
_JSON = {"data", "properties", "items"}
_TIME = {"occurred_at", "answered_at"}


def sort_key(occurred_at: datetime | None, stream: str, key: str) -> str:
    """Canonical order: by time (records without one last), then stream and key."""
    if occurred_at is None:
        return f"~|{stream}|{key}"
    when = utc(occurred_at).replace(tzinfo=None).isoformat("T", "microseconds")  # type: ignore[union-attr]
    return f"{when}|{stream}|{key}"


def set_id(identifiers: Iterable[Identifier]) -> str:
    text = "\x1f".join(f"{t}\x1e{v}" for t, v in sorted(identifiers))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class _Prepared:
    record: Record
    identifiers: tuple[Identifier, ...]
    set_id: str | None
    sort_key: str
    row: dict[str, Any]


@dataclass
class _ComponentSet:
    node: SetNode
    profile_id: str | None


class ProfileWriter:
    """The profile store's write path."""

    def __init__(self, engine: Engine, identity: IdentityConfig) -> None:
        self.engine = engine
        self.identity = identity
        self.rules = identity.rules
        from cdp_core.transforms import normalizers  # the same normalizers the normalize transform uses

        self._normalizers = normalizers

    # -- step 0: per-record preparation in Python ---------------------------------------
    def normalize_identifier(self, type_name: str, value: Any) -> tuple[str | None, str]:
        """(normalized value or None, why not)."""
        text = str(value).strip()
        if not text:
            return None, "empty"
        if type_name == "email":
            result = self._normalizers.email(text)
        elif type_name == "phone":
            # Already E.164 (the normalize transform's output, or a vendor's): taken as is;
            # full parsing costs ~100 us a number and would dominate a large ingest.
            result = text if _E164.fullmatch(text) else self._normalizers.phone(text, self.identity.default_region)
        else:
            result = text
        if isinstance(result, self._normalizers.Invalid):
            return None, result.problem
        if self.rules.is_blocked(type_name, result):
            return None, f"{type_name} {result!r} is blocked"
        return result, ""

    def prepare(self, batch: list[Record], checkpoint: Checkpoint) -> list[_Prepared]:
        latest: dict[tuple[str, str], Record] = {}
        for record in batch:
            latest[(record.stream, record.key)] = record  # a re-delivery within the batch: the last wins
        prepared = []
        for record in latest.values():
            identifiers: list[Identifier] = []
            problems: list[str] = []
            for type_name, value in record.identifiers.items():
                normalized, why = self.normalize_identifier(type_name, value)
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
            ids = tuple(sorted(identifiers))
            key = sort_key(record.occurred_at, record.stream, record.key)
            prepared.append(_Prepared(record, ids, set_id(ids) if ids else None, key, row))
        return prepared

    # -- the transaction ---------------------------------------------------------------
    def write(self, batch: list[Record], checkpoint: Checkpoint) -> None:
        prepared = self.prepare(batch, checkpoint)
        with self.engine.begin() as conn:
            if prepared:
                self._write(Bulk(conn), prepared, checkpoint.run_id)
            if checkpoint.commit_by is None or checkpoint.commit_by == checkpoint.node:
                checkpoint.write(conn)

    def _write(self, db: Bulk, prepared: list[_Prepared], run_id: str) -> None:
        now = datetime.now(UTC)
        old_sets = self._old_sets(db, prepared)
        self._store_records(db, prepared, run_id, now)
        new_sets = {p.set_id for p in prepared if p.set_id is not None}
        orphan_ids, orphan_profiles = self._drop_orphans(db, {s for s in old_sets.values() if s} - new_sets)
        frontier = {i for p in prepared for i in p.identifiers} | orphan_ids
        if not new_sets and not orphan_profiles and not frontier:
            return  # only anonymous records: nobody to resolve
        component = self._component(db, new_sets, frontier, orphan_profiles)
        resolution = resolve([s.node for s in component.values()], self.rules)
        _Apply(db, self.identity, component, resolution, orphan_profiles, run_id, now, prepared).run()

    def _old_sets(self, db: Bulk, prepared: list[_Prepared]) -> dict[tuple[str, str], str | None]:
        db.keys("cdp_tmp_keys", ("stream", "key"), [(p.record.stream, p.record.key) for p in prepared])
        rows = db.query(
            'SELECT r.stream, r."key", r.set_id FROM record_index r '
            'JOIN cdp_tmp_keys k ON r.stream = k.stream AND r."key" = k."key"'
        )
        return {(stream, key): sid for stream, key, sid in rows}

    def _store_records(self, db: Bulk, prepared: list[_Prepared], run_id: str, now: datetime) -> None:
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
        db.upsert(
            "id_set_members",
            ("type", "value", "set_id"),
            [(t, v, sid) for sid, (ids, _) in sets.items() for t, v in ids],
            keys=("type", "value", "set_id"),
            update=(),
        )
        stamp = db.time(now)
        db.upsert(
            "record_index",
            ("stream", "key", "kind", "set_id", "occurred_at", "updated_at", "run_id"),
            [
                (p.record.stream, p.record.key, str(p.record.kind), p.set_id, db.time(p.record.occurred_at), stamp, run_id)
                for p in prepared
            ],
            keys=("stream", "key"),
        )
        by_kind: dict[RecordKind, list[_Prepared]] = defaultdict(list)
        for p in prepared:
            by_kind[p.record.kind].append(p)
        for kind, items in by_kind.items():
            table, columns = KIND_TABLES[kind]
            convert = [db.json if c in _JSON else db.time if c in _TIME else db.number if c == "amount" else None for c in columns]
            rows = [
                (p.record.stream, p.record.key, *[f(p.row[c]) if f else p.row[c] for c, f in zip(columns, convert, strict=True)])
                for p in items
            ]
            db.upsert(table, ("stream", "key", *columns), rows, keys=("stream", "key"))

    def _drop_orphans(self, db: Bulk, candidates: set[str]) -> tuple[set[Identifier], set[str]]:
        """Sets no record uses any more (a record changed its identifiers): remove them.

        Returns their identifiers and the profiles they belonged to: both must be resolved again.
        """
        if not candidates:
            return set(), set()
        db.keys("cdp_tmp_sets", ("id",), [(s,) for s in candidates])
        used = {r[0] for r in db.query("SELECT DISTINCT r.set_id FROM record_index r JOIN cdp_tmp_sets t ON r.set_id = t.id")}
        orphans = candidates - used
        if not orphans:
            return set(), set()
        db.keys("cdp_tmp_sets", ("id",), [(s,) for s in orphans])
        identifiers = {
            (t, v) for t, v in db.query("SELECT m.type, m.value FROM id_set_members m JOIN cdp_tmp_sets t ON m.set_id = t.id")
        }
        profiles = {
            r[0]
            for r in db.query("SELECT s.profile_id FROM id_sets s JOIN cdp_tmp_sets t ON s.id = t.id WHERE s.profile_id IS NOT NULL")
        }
        db.execute("DELETE FROM id_set_members WHERE set_id IN (SELECT id FROM cdp_tmp_sets)")
        db.execute("DELETE FROM id_sets WHERE id IN (SELECT id FROM cdp_tmp_sets)")
        return identifiers, profiles

    def _component(
        self, db: Bulk, seeds: set[str], frontier: set[Identifier], seed_profiles: set[str]
    ) -> dict[str, _ComponentSet]:
        """Every set connected to the seeds through shared identifiers or a shared profile."""
        known: set[str] = set(seeds)
        seen_ids: set[Identifier] = set()
        seen_profiles: set[str] = set()
        loaded: dict[str, _ComponentSet] = {}
        to_load = set(seeds) | self._sets_of_profiles(db, seed_profiles - seen_profiles, known)
        seen_profiles |= seed_profiles
        while frontier or to_load:
            if frontier:
                seen_ids |= frontier
                db.keys("cdp_tmp_ids", ("type", "value"), frontier)
                found = {
                    r[0]
                    for r in db.query(
                        "SELECT DISTINCT m.set_id FROM id_set_members m "
                        "JOIN cdp_tmp_ids f ON m.type = f.type AND m.value = f.value"
                    )
                }
                to_load |= found - known
                known |= found
                frontier = set()
            if to_load:
                db.keys("cdp_tmp_sets", ("id",), [(s,) for s in to_load])
                to_load = set()
                profiles: set[str] = set()
                for sid, identifiers, key, profile_id in db.query(
                    "SELECT s.id, s.identifiers, s.sort_key, s.profile_id FROM id_sets s JOIN cdp_tmp_sets t ON s.id = t.id"
                ):
                    ids = tuple(sorted((t, v) for t, v in db.read_json(identifiers)))
                    loaded[sid] = _ComponentSet(SetNode(sid, ids, key), profile_id)
                    frontier.update(i for i in ids if i not in seen_ids)
                    if profile_id and profile_id not in seen_profiles:
                        profiles.add(profile_id)
                seen_profiles |= profiles
                to_load = self._sets_of_profiles(db, profiles, known)
        return loaded

    def _sets_of_profiles(self, db: Bulk, profiles: set[str], known: set[str]) -> set[str]:
        if not profiles:
            return set()
        db.keys("cdp_tmp_profiles", ("id",), [(p,) for p in profiles])
        found = {r[0] for r in db.query("SELECT s.id FROM id_sets s JOIN cdp_tmp_profiles p ON s.profile_id = p.id")}
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
        batch: list[_Prepared],
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
            db.keys("cdp_tmp_profiles", ("id",), [(p,) for p in self.old_profiles])
            for pid, key, created in db.query(
                "SELECT p.id, p.sort_key, p.created_at FROM profiles p JOIN cdp_tmp_profiles t ON p.id = t.id"
            ):
                old_rows[pid] = (key, created)
        keeper_of = self._keepers(old_rows)
        merged, dead, merge_rows = self._merged(keeper_of)
        stamp = db.time(self.now)
        db.upsert(
            "profiles",
            ("id", "founder", "sort_key", "created_at", "updated_at", "merged_into"),
            [
                (
                    keeper_of[g.index],
                    g.founder,
                    g.sort_key,
                    old_rows[keeper_of[g.index]][1] if keeper_of[g.index] in old_rows else stamp,
                    stamp,
                    None,
                )
                for g in self.resolution.groups
            ],
            keys=("id",),
            update=("founder", "sort_key", "updated_at", "merged_into"),
        )
        if merged:
            pairs = list(merged.items())
            db.many(f"UPDATE profiles SET merged_into = {db.mark}, updated_at = {db.mark} WHERE id = {db.mark}", [(w, stamp, lo) for lo, w in pairs])
            # Profiles merged into a loser earlier now point at the winner: lookups stay one hop.
            db.many(f"UPDATE profiles SET merged_into = {db.mark} WHERE merged_into = {db.mark}", [(w, lo) for lo, w in pairs])
            db.insert(
                "merge_log",
                ("at", "run_id", "winner", "loser", "identifier_type", "identifier_value", "record", "reason"),
                merge_rows,
            )
        if dead:
            db.many(f"DELETE FROM profiles WHERE id = {db.mark}", [(p,) for p in dead])
        moved = [
            (keeper_of[g.index], s) for g in self.resolution.groups for s in g.sets if self.old_of_set.get(s) != keeper_of[g.index]
        ]
        db.many(f"UPDATE id_sets SET profile_id = {db.mark} WHERE id = {db.mark}", moved)
        affected = set(keeper_of.values()) | set(self.old_profiles)
        db.keys("cdp_tmp_profiles", ("id",), [(p,) for p in affected])
        self._identities(keeper_of)
        self._traits(keeper_of)

    def _keepers(self, old_rows: dict[str, tuple[str, Any]]) -> dict[int, str]:
        claimed: set[str] = set()
        keeper_of: dict[int, str] = {}
        for group in self.resolution.groups:
            olds = {self.old_of_set[s] for s in group.sets if s in self.old_of_set}
            founder_old = self.old_of_set.get(group.founder)
            if founder_old is not None and founder_old not in claimed:
                keeper = founder_old
            else:
                free = sorted((p for p in olds if p not in claimed and p in old_rows), key=lambda p: (old_rows[p][0], p))
                keeper = free[0] if free else self._new_id(group.founder, claimed, old_rows)
            claimed.add(keeper)
            keeper_of[group.index] = keeper
        return keeper_of

    def _new_id(self, founder: str, claimed: set[str], old_rows: dict[str, Any]) -> str:
        candidate = uuid.uuid5(_PROFILE_NS, founder).hex
        if candidate in claimed or candidate in old_rows:
            return uuid.uuid4().hex  # the founder's id is in use by another group (a split); never reuse it
        return candidate

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
        record = self.component[link.set_id].node.sort_key.split("|", 1)[1] if link and link.set_id in self.component else None
        reason = f"{via[0]} {via[1]!r} on record {record} belongs to both profiles" if via else "profiles recomputed into one person"
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

    def _identities(self, keeper_of: dict[int, str]) -> None:
        db = self.db
        db.execute("DELETE FROM identities WHERE profile_id IN (SELECT id FROM cdp_tmp_profiles)")
        rows = []
        for group in self.resolution.groups:
            for (type_name, value), sid in group.owned.items():
                origin = self.component[sid].node.sort_key
                rows.append((type_name, value, keeper_of[group.index], origin.split("|")[1], origin))
        db.upsert("identities", ("type", "value", "profile_id", "source", "first_seen"), rows, keys=("type", "value"))

    def _traits(self, keeper_of: dict[int, str]) -> None:
        db = self.db
        set_to_profile = {s: keeper_of[g.index] for g in self.resolution.groups for s in g.sets}
        db.keys("cdp_tmp_sets", ("id",), [(s,) for s in set_to_profile])
        # The batch's own records are in memory; only older ones are read back.
        db.keys("cdp_tmp_keys", ("stream", "key"), [(p.record.stream, p.record.key) for p in self.batch])
        not_in_batch = (
            'LEFT JOIN cdp_tmp_keys k ON k.stream = r.stream AND k."key" = r."key" WHERE k.stream IS NULL'
        )
        records: dict[str, list[tuple[str, datetime | None, str, dict[str, Any]]]] = defaultdict(list)
        latest_nps: dict[str, tuple[str, int, str, datetime | None, str]] = {}

        def add_nps(pid: str, order: str, score: int, category: str, when: datetime | None, stream: str) -> None:
            if pid not in latest_nps or _later(order, latest_nps[pid][0]):
                latest_nps[pid] = (order, score, category, when, stream)

        for p in self.batch:
            pid = set_to_profile.get(p.set_id)  # type: ignore[arg-type]
            if pid is None:
                continue
            if p.record.kind is RecordKind.profile:
                records[pid].append((p.sort_key, utc(p.record.occurred_at), p.record.stream, p.row["data"]))
            elif p.record.kind is RecordKind.nps_response:
                add_nps(pid, p.sort_key, p.row["score"], p.row["category"], p.row["answered_at"], p.record.stream)
        for sid, stream, key, data, occurred in db.query(
            'SELECT r.set_id, pr.stream, pr."key", pr.data, pr.occurred_at FROM record_index r '
            "JOIN cdp_tmp_sets t ON r.set_id = t.id "
            f'JOIN profile_records pr ON pr.stream = r.stream AND pr."key" = r."key" {not_in_batch}'
        ):
            when = db.read_time(occurred)
            records[set_to_profile[sid]].append((sort_key(when, stream, key), when, stream, db.read_json(data)))
        for sid, stream, key, score, category, answered in db.query(
            'SELECT r.set_id, n.stream, n."key", n.score, n.category, n.answered_at FROM record_index r '
            "JOIN cdp_tmp_sets t ON r.set_id = t.id "
            f'JOIN nps_responses n ON n.stream = r.stream AND n."key" = r."key" {not_in_batch}'
        ):
            when = db.read_time(answered)
            add_nps(set_to_profile[sid], sort_key(when, stream, key), score, category, when, stream)
        db.execute("DELETE FROM traits WHERE profile_id IN (SELECT id FROM cdp_tmp_profiles)")
        rows = []
        rules = self.identity.traits
        for pid in set(keeper_of.values()):
            for name, trait in compute_traits(records.get(pid, []), rules).items():
                rows.append((pid, name, db.json(trait["value"]), trait["source"], db.time(trait["set_at"])))
            if pid in latest_nps:
                _, score, category, answered, stream = latest_nps[pid]
                rows.append((pid, "nps_score", db.json(score), stream, db.time(answered)))
                rows.append((pid, "nps_category", db.json(category), stream, db.time(answered)))
        db.insert("traits", ("profile_id", "name", "value", "source", "set_at"), rows)


def _later(a: str, b: str) -> bool:
    """Is sort key ``a`` later than ``b``? Records without a time ('~') count as oldest for 'latest answer'."""
    if a.startswith("~") != b.startswith("~"):
        return b.startswith("~")
    return a > b
