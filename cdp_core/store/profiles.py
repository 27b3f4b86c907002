"""Writes batches into the profile store and keeps profiles resolved, in one transaction per batch.

Per batch, set-based (a handful of statements per table, never one per record):

1. store each record as it came, keyed by (stream, key) (re-delivery updates);
2. record its identifier set in the identity graph;
3. find the connected components the batch touches and replay each with the
   pure resolver (cdp_core/identity.py);
4. map the resolved groups onto existing profile ids (the oldest keeps its id;
   the others are marked merged into it and logged), then rewrite identities and
   traits of the affected profiles only.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from cdp_core.identity import Identifier, IdentityConfig, Resolution, SetNode, resolve
from cdp_core.records import Record, RecordKind
from cdp_core.store import profile_models as m
from cdp_core.store.checkpoint import Checkpoint
from cdp_core.store.kinds import KindError, row_for, utc
from cdp_core.store.sql import upsert
from cdp_core.store.traits import compute_traits

T = TypeVar("T")
CHUNK = 500
_PROFILE_NS = uuid.UUID("5f0c3a4e-8d1b-4f2a-9c55-2b7e1f6d9a10")

KIND_TABLES: dict[RecordKind, Table] = {
    RecordKind.profile: m.ProfileRecord.__table__,  # type: ignore[dict-item]
    RecordKind.event: m.Event.__table__,  # type: ignore[dict-item]
    RecordKind.order: m.Order.__table__,  # type: ignore[dict-item]
    RecordKind.nps_response: m.NpsResponse.__table__,  # type: ignore[dict-item]
    RecordKind.consent: m.Consent.__table__,  # type: ignore[dict-item]
}
_sets: Table = m.IdSet.__table__  # type: ignore[assignment]
_members: Table = m.IdSetMember.__table__  # type: ignore[assignment]
_index: Table = m.RecordIndex.__table__  # type: ignore[assignment]
_profiles: Table = m.Profile.__table__  # type: ignore[assignment]
_identities: Table = m.Identity.__table__  # type: ignore[assignment]
_traits: Table = m.Trait.__table__  # type: ignore[assignment]
_merges: Table = m.MergeLog.__table__  # type: ignore[assignment]


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sort_key(occurred_at: datetime | None, stream: str, key: str) -> str:
    """Canonical order: by time (records without one last), then stream and key."""
    when = utc(occurred_at).strftime("%Y-%m-%dT%H:%M:%S.%f") if occurred_at else "~"
    return f"{when}|{stream}|{key}"


def set_id(identifiers: Iterable[Identifier]) -> str:
    text = "\x1f".join(f"{t}\x1e{v}" for t, v in sorted(identifiers))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


ANONYMOUS_KINDS = frozenset({RecordKind.event, RecordKind.order, RecordKind.nps_response})
"""Kinds that still count without a person: an anonymous NPS answer is part of the score."""


@dataclass
class _Prepared:
    record: Record
    identifiers: tuple[Identifier, ...]
    set_id: str | None
    sort_key: str
    row: dict[str, Any]


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
            result = self._normalizers.phone(text, self.identity.default_region)
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
            prepared.append(
                _Prepared(
                    record, ids, set_id(ids) if ids else None, sort_key(record.occurred_at, record.stream, record.key), row
                )
            )
        return prepared

    # -- the transaction ---------------------------------------------------------------
    def write(self, batch: list[Record], checkpoint: Checkpoint) -> None:
        prepared = self.prepare(batch, checkpoint)
        with self.engine.begin() as conn:
            if prepared:
                self._write(conn, prepared, checkpoint.run_id)
            if checkpoint.commit_by is None or checkpoint.commit_by == checkpoint.node:
                checkpoint.write(conn)

    def _write(self, conn: Connection, prepared: list[_Prepared], run_id: str) -> None:
        now = datetime.now(UTC)
        old_sets = self._old_sets(conn, prepared)
        self._store_records(conn, prepared, run_id, now)
        new_sets = {p.set_id for p in prepared if p.set_id is not None}
        orphan_ids, orphan_profiles = self._drop_orphans(conn, {s for s in old_sets.values() if s} - new_sets)
        frontier = {i for p in prepared for i in p.identifiers} | orphan_ids
        if not new_sets and not orphan_profiles and not frontier:
            return  # only anonymous records: nobody to resolve
        component = self._component(conn, new_sets, frontier, orphan_profiles)
        resolution = resolve([s.node for s in component.values()], self.rules)
        self._apply(conn, component, resolution, orphan_profiles, run_id, now)

    def _old_sets(self, conn: Connection, prepared: list[_Prepared]) -> dict[tuple[str, str], str | None]:
        keys = [(p.record.stream, p.record.key) for p in prepared]
        found: dict[tuple[str, str], str | None] = {}
        for part in chunks(keys):
            rows = conn.execute(
                select(_index.c.stream, _index.c.key, _index.c.set_id).where(tuple_(_index.c.stream, _index.c.key).in_(part))
            )
            found.update({(r.stream, r.key): r.set_id for r in rows})
        return found

    def _store_records(self, conn: Connection, prepared: list[_Prepared], run_id: str, now: datetime) -> None:
        sets: dict[str, tuple[tuple[Identifier, ...], str]] = {}
        for p in prepared:
            if p.set_id is None:
                continue
            known = sets.get(p.set_id)
            if known is None or p.sort_key < known[1]:
                sets[p.set_id] = (p.identifiers, p.sort_key)
        set_rows = [
            {"id": sid, "identifiers": [list(i) for i in ids], "sort_key": key, "profile_id": None}
            for sid, (ids, key) in sets.items()
        ]
        _upsert_min_sort_key(conn, set_rows)
        upsert(
            conn,
            _members,
            [{"type": t, "value": v, "set_id": sid} for sid, (ids, _) in sets.items() for t, v in ids],
            keys=("type", "value", "set_id"),
            update=(),
        )
        upsert(
            conn,
            _index,
            [
                {
                    "stream": p.record.stream,
                    "key": p.record.key,
                    "kind": str(p.record.kind),
                    "set_id": p.set_id,
                    "occurred_at": utc(p.record.occurred_at),
                    "updated_at": now,
                    "run_id": run_id,
                }
                for p in prepared
            ],
            keys=("stream", "key"),
        )
        by_kind: dict[RecordKind, list[dict[str, Any]]] = defaultdict(list)
        for p in prepared:
            by_kind[p.record.kind].append({"stream": p.record.stream, "key": p.record.key, **p.row})
        for kind, rows in by_kind.items():
            upsert(conn, KIND_TABLES[kind], rows, keys=("stream", "key"))

    def _drop_orphans(self, conn: Connection, candidates: set[str]) -> tuple[set[Identifier], set[str]]:
        """Sets no record uses any more (a record changed its identifiers): remove them.

        Returns their identifiers and the profiles they belonged to: both must be resolved again.
        """
        if not candidates:
            return set(), set()
        used: set[str] = set()
        for part in chunks(sorted(candidates)):
            used.update(conn.execute(select(_index.c.set_id).where(_index.c.set_id.in_(part)).distinct()).scalars())
        orphans = sorted(candidates - used)
        identifiers: set[Identifier] = set()
        profiles: set[str] = set()
        for part in chunks(orphans):
            rows = conn.execute(select(_members.c.type, _members.c.value).where(_members.c.set_id.in_(part)))
            identifiers.update((r.type, r.value) for r in rows)
            stmt = select(_sets.c.profile_id).where(_sets.c.id.in_(part), _sets.c.profile_id.is_not(None))
            profiles.update(conn.execute(stmt).scalars())
            conn.execute(delete(_members).where(_members.c.set_id.in_(part)))
            conn.execute(delete(_sets).where(_sets.c.id.in_(part)))
        return identifiers, profiles

    def _component(
        self, conn: Connection, seeds: set[str], frontier: set[Identifier], seed_profiles: set[str]
    ) -> dict[str, _ComponentSet]:
        """Every set connected to the seeds through shared identifiers or a shared profile."""
        known: set[str] = set(seeds)
        seen_ids: set[Identifier] = set()
        seen_profiles: set[str] = set(seed_profiles)
        new_sets = set(seeds)
        for part in chunks(sorted(seed_profiles)):
            found = set(conn.execute(select(_sets.c.id).where(_sets.c.profile_id.in_(part))).scalars())
            new_sets |= found
            known |= found
        loaded: dict[str, _ComponentSet] = {}
        while new_sets or frontier:
            if frontier:
                seen_ids |= frontier
                found = self._sets_with(conn, frontier)
                new_sets |= found - known
                known |= found
                frontier = set()
            if new_sets:
                rows = self._load_sets(conn, new_sets)
                loaded.update(rows)
                new_sets = set()
                frontier = {i for s in rows.values() for i in s.node.identifiers} - seen_ids
                profiles = {s.profile_id for s in rows.values() if s.profile_id} - seen_profiles
                if profiles:
                    seen_profiles |= profiles
                    for part in chunks(sorted(profiles)):
                        found = set(conn.execute(select(_sets.c.id).where(_sets.c.profile_id.in_(part))).scalars())
                        new_sets |= found - known
                        known |= found
        return loaded

    def _sets_with(self, conn: Connection, identifiers: set[Identifier]) -> set[str]:
        by_type: dict[str, list[str]] = defaultdict(list)
        for type_name, value in identifiers:
            by_type[type_name].append(value)
        found: set[str] = set()
        for type_name, values in by_type.items():
            for part in chunks(sorted(values)):
                stmt = select(_members.c.set_id).where(_members.c.type == type_name, _members.c.value.in_(part))
                found.update(conn.execute(stmt).scalars())
        return found

    def _load_sets(self, conn: Connection, ids: set[str]) -> dict[str, _ComponentSet]:
        out: dict[str, _ComponentSet] = {}
        for part in chunks(sorted(ids)):
            for row in conn.execute(select(_sets).where(_sets.c.id.in_(part))):
                identifiers = tuple(sorted((t, v) for t, v in row.identifiers))
                out[row.id] = _ComponentSet(SetNode(row.id, identifiers, row.sort_key), row.profile_id)
        return out

    # -- mapping groups onto profiles ---------------------------------------------------
    def _apply(
        self,
        conn: Connection,
        component: dict[str, _ComponentSet],
        resolution: Resolution,
        emptied: set[str],
        run_id: str,
        now: datetime,
    ) -> None:
        old_of_set = {sid: s.profile_id for sid, s in component.items() if s.profile_id}
        old_profiles = sorted(set(old_of_set.values()) | emptied)
        old_rows = {}
        for part in chunks(old_profiles):
            old_rows.update({r.id: r for r in conn.execute(select(_profiles).where(_profiles.c.id.in_(part)))})
        claimed: dict[str, int] = {}
        keeper_of: dict[int, str] = {}
        for group in resolution.groups:
            olds = {old_of_set[s] for s in group.sets if s in old_of_set}
            founder_old = old_of_set.get(group.founder)
            if founder_old is not None and founder_old not in claimed:
                keeper = founder_old
            else:
                free = sorted((p for p in olds if p not in claimed), key=lambda p: (old_rows[p].sort_key, p))
                keeper = free[0] if free else self._new_id(group.founder, claimed, old_rows)
            claimed[keeper] = group.index
            keeper_of[group.index] = keeper
        group_by_index = {g.index: g for g in resolution.groups}
        merged: dict[str, str] = {}
        dead: list[str] = []
        merge_rows = []
        for profile_id in old_profiles:
            if profile_id in claimed:
                continue
            its_sets = [s for s, p in old_of_set.items() if p == profile_id]
            by_group: dict[int, int] = defaultdict(int)
            group_of = resolution.group_of()
            for s in its_sets:
                if s in group_of:
                    by_group[group_of[s]] += 1
            if not by_group:
                dead.append(profile_id)  # every record it had now belongs elsewhere or is gone
                continue
            target = max(by_group, key=lambda g: (by_group[g], -g))
            winner = keeper_of[target]
            merged[profile_id] = winner
            merge_rows.append(self._merge_row(profile_id, winner, group_by_index[target], its_sets, component, resolution, run_id, now))
        self._write_profiles(conn, resolution, keeper_of, merged, old_rows, now)
        for part in chunks(dead):
            conn.execute(delete(_profiles).where(_profiles.c.id.in_(part)))
        if merge_rows:
            conn.execute(insert(_merges), merge_rows)
        conn.execute(
            update(_sets).where(_sets.c.id == bindparam("sid")).values(profile_id=bindparam("pid")),
            [{"sid": s, "pid": keeper_of[g.index]} for g in resolution.groups for s in g.sets],
        )
        affected = sorted(set(keeper_of.values()) | set(old_profiles))
        self._rewrite_identities(conn, resolution, keeper_of, component, affected)
        self._rewrite_traits(conn, resolution, keeper_of, affected, now)

    def _new_id(self, founder: str, claimed: dict[str, int], old_rows: dict[str, Any]) -> str:
        candidate = uuid.uuid5(_PROFILE_NS, founder).hex
        if candidate in claimed or candidate in old_rows:
            return uuid.uuid4().hex  # the founder's id is in use by another group (a split); never reuse it
        return candidate

    def _merge_row(
        self,
        loser: str,
        winner: str,
        group: Any,
        loser_sets: list[str],
        component: dict[str, _ComponentSet],
        resolution: Resolution,
        run_id: str,
        now: datetime,
    ) -> dict[str, Any]:
        loser_ids = {i for s in loser_sets if s in component for i in component[s].node.identifiers}
        in_group = set(group.sets)
        link = next(
            (mg for mg in resolution.merges if mg.set_id in in_group and mg.via in loser_ids),
            next((mg for mg in resolution.merges if mg.set_id in in_group), None),
        )
        via = link.via if link else None
        record = component[link.set_id].node.sort_key.split("|", 1)[1] if link and link.set_id in component else None
        reason = (
            f"{via[0]} {via[1]!r} on record {record} belongs to both profiles"
            if via
            else "profiles recomputed into one person"
        )
        return {
            "at": now,
            "run_id": run_id,
            "winner": winner,
            "loser": loser,
            "identifier_type": via[0] if via else None,
            "identifier_value": via[1] if via else None,
            "record": record,
            "reason": reason,
        }

    def _write_profiles(
        self,
        conn: Connection,
        resolution: Resolution,
        keeper_of: dict[int, str],
        merged: dict[str, str],
        old_rows: dict[str, Any],
        now: datetime,
    ) -> None:
        rows = []
        for group in resolution.groups:
            pid = keeper_of[group.index]
            created = old_rows[pid].created_at if pid in old_rows else now
            rows.append(
                {
                    "id": pid,
                    "founder": group.founder,
                    "sort_key": group.sort_key,
                    "created_at": created,
                    "updated_at": now,
                    "merged_into": None,
                }
            )
        upsert(conn, _profiles, rows, keys=("id",), update=("founder", "sort_key", "updated_at", "merged_into"))
        if merged:
            pairs = [{"loser": loser, "winner": winner} for loser, winner in merged.items()]
            conn.execute(
                update(_profiles).where(_profiles.c.id == bindparam("loser")).values(merged_into=bindparam("winner"), updated_at=now),
                pairs,
            )
            # Profiles merged into a loser earlier now point at the winner: lookups stay one hop.
            conn.execute(
                update(_profiles)
                .where(_profiles.c.merged_into == bindparam("loser"))
                .values(merged_into=bindparam("winner")),
                pairs,
            )

    def _rewrite_identities(
        self,
        conn: Connection,
        resolution: Resolution,
        keeper_of: dict[int, str],
        component: dict[str, _ComponentSet],
        affected: list[str],
    ) -> None:
        for part in chunks(affected):
            conn.execute(delete(_identities).where(_identities.c.profile_id.in_(part)))
        rows = []
        for group in resolution.groups:
            for (type_name, value), sid in group.owned.items():
                origin = component[sid].node.sort_key
                rows.append(
                    {
                        "type": type_name,
                        "value": value,
                        "profile_id": keeper_of[group.index],
                        "source": origin.split("|")[1],
                        "first_seen": origin,
                    }
                )
        upsert(conn, _identities, rows, keys=("type", "value"))

    def _rewrite_traits(
        self, conn: Connection, resolution: Resolution, keeper_of: dict[int, str], affected: list[str], now: datetime
    ) -> None:
        set_to_profile = {s: keeper_of[g.index] for g in resolution.groups for s in g.sets}
        records: dict[str, list[tuple[str, datetime | None, str, dict[str, Any]]]] = defaultdict(list)
        nps: dict[str, tuple[str, int, str, datetime | None, str]] = {}
        pr, nr = KIND_TABLES[RecordKind.profile], KIND_TABLES[RecordKind.nps_response]
        sets = sorted(set_to_profile)
        for part in chunks(sets):
            join = _index.join(pr, (pr.c.stream == _index.c.stream) & (pr.c.key == _index.c.key))
            stmt = select(_index.c.set_id, pr.c.stream, pr.c.key, pr.c.data, pr.c.occurred_at).select_from(join)
            for row in conn.execute(stmt.where(_index.c.set_id.in_(part))):
                key = sort_key(row.occurred_at, row.stream, row.key)
                records[set_to_profile[row.set_id]].append((key, row.occurred_at, row.stream, row.data))
            join = _index.join(nr, (nr.c.stream == _index.c.stream) & (nr.c.key == _index.c.key))
            stmt = select(_index.c.set_id, nr.c.stream, nr.c.key, nr.c.score, nr.c.category, nr.c.answered_at)
            for row in conn.execute(stmt.select_from(join).where(_index.c.set_id.in_(part))):
                pid = set_to_profile[row.set_id]
                key = sort_key(row.answered_at, row.stream, row.key)
                if pid not in nps or _later(key, nps[pid][0]):
                    nps[pid] = (key, row.score, row.category, row.answered_at, row.stream)
        for part in chunks(affected):
            conn.execute(delete(_traits).where(_traits.c.profile_id.in_(part)))
        rows = []
        rules = self.identity.traits
        for pid in sorted(set(keeper_of.values())):
            for name, trait in compute_traits(records.get(pid, []), rules).items():
                rows.append({"profile_id": pid, "name": name, **trait})
            if pid in nps:
                _, score, category, answered, stream = nps[pid]
                rows.append({"profile_id": pid, "name": "nps_score", "value": score, "source": stream, "set_at": answered})
                rows.append({"profile_id": pid, "name": "nps_category", "value": category, "source": stream, "set_at": answered})
        for part in chunks(rows, 2000):
            conn.execute(insert(_traits), list(part))


def _later(a: str, b: str) -> bool:
    """Is sort key ``a`` later than ``b``? Records without a time ('~') count as oldest for 'latest answer'."""
    if a.startswith("~") != b.startswith("~"):
        return b.startswith("~")
    return a > b


@dataclass
class _ComponentSet:
    node: SetNode
    profile_id: str | None


def _upsert_min_sort_key(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert new identifier sets; an existing set keeps the earlier of the two sort keys."""
    if not rows:
        return
    dialect = conn.dialect.name
    stmt = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(_sets)
    earlier = (func.min if dialect == "sqlite" else func.least)(_sets.c.sort_key, stmt.excluded.sort_key)
    conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={"sort_key": earlier}), rows)
