"""Everything the store holds about one person, as one JSON document (``cdp privacy export``, docs/privacy.md).

The document is versioned (:data:`EXPORT_VERSION`); its sections are documented in
docs/privacy.md ("Export"). It is read set-based: one query per section (per record
kind), whatever the number of records, all in one transaction so the sections agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from cdp_core.records import RecordKind
from cdp_core.store import system_tables
from cdp_core.timeutil import as_utc
from sqlalchemy import Connection, Table, or_, select

from cdp_profiles.consent import latest_consents
from cdp_profiles.privacy.audience_keys import person_member_keys
from cdp_profiles.privacy.erase import chunks
from cdp_profiles.privacy.person import Person
from cdp_profiles.privacy.run_traces import logged_ids, quarantined_ids
from cdp_profiles.privacy.traces import Normalize, Traces
from cdp_profiles.store import sortkey, tables
from cdp_profiles.store.owners import owned
from cdp_profiles.store.queries import money
from cdp_profiles.store.traits import Traits, origin

EXPORT_FORMAT = "cdp-privacy-export"
EXPORT_VERSION = 1
"""Bumped when a section changes meaning or loses a field; a new field or section keeps it."""

_profiles, _identities, _merges, _sets, _index = (
    tables.profiles, tables.identities, tables.merge_log, tables.id_sets, tables.record_index
)
_computed, _members, _history = tables.computed_traits, tables.segment_members, tables.segment_history
_audience, _pending, _quarantine = tables.audience_members, tables.audience_pending, system_tables.quarantine
_log = system_tables.ingest_log

KIND_TABLES: dict[str, Table] = {
    str(RecordKind.profile): tables.profile_records,
    str(RecordKind.event): tables.events,
    str(RecordKind.order): tables.orders,
    str(RecordKind.nps_response): tables.nps_responses,
    str(RecordKind.consent): tables.consents,
}
"""Each record kind's table: the ``records`` section has one list per kind, by these names."""


def plain(value: Any) -> Any:
    """A stored value as JSON gives it: times in UTC ISO 8601, amounts as exact decimal text."""
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, Decimal):
        return str(money(value))
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _rows(conn: Connection, stmt: Any, drop: Iterable[str] = ()) -> list[dict[str, Any]]:
    skip = set(drop)
    return [{k: plain(v) for k, v in r._mapping.items() if k not in skip} for r in conn.execute(stmt)]


def export_document(conn: Connection, person: Person, exported_at: datetime, normalize: Normalize) -> dict[str, Any]:
    """The export of ``person`` (:func:`cdp_profiles.privacy.person.person_of` on the same connection);
    ``normalize``: the store's identifier normalization, to recognize them in quarantine as forget does."""
    pids, sets = person.profile_ids, person.set_ids
    profiles = _rows(
        conn,
        select(_profiles.c.id, _profiles.c.merged_into, _profiles.c.created_at, _profiles.c.updated_at,
               _profiles.c.traits).where(_profiles.c.id.in_(pids)).order_by(_profiles.c.id),
    )  # fmt: skip
    live = conn.execute(
        select(_profiles.c.traits, _profiles.c.trait_sources).where(_profiles.c.id == person.profile_id)
    ).one()
    records: dict[str, list[dict[str, Any]]] = {}
    for kind, table in KIND_TABLES.items():
        joined = owned(table, pids)[0]  # through their sets, and on the fast path
        stmt = select(table, _index.c.updated_at.label("stored_at"), _index.c.run_id).select_from(joined)
        stmt = stmt.order_by(table.c.stream, table.c.key)
        records[kind] = _rows(conn, stmt)
    identity_rows = _rows(conn, select(_identities).where(_identities.c.profile_id.in_(pids)))
    identities = [{**r, **_origin(r.pop("first_seen"))} for r in identity_rows]
    identities.sort(key=lambda r: (r["type"], r["value"]))
    sets_stmt = select(_sets.c.id, _sets.c.identifiers, _sets.c.profile_id, _sets.c.sort_key).where(_sets.c.id.in_(sets))
    id_sets = [{**r, **_origin(r.pop("sort_key"))} for r in _rows(conn, sets_stmt.order_by(_sets.c.id))]
    touching = or_(_merges.c.winner.in_(pids), _merges.c.loser.in_(pids))
    keys = person_member_keys(conn, person)
    traces = Traces.of(person.own, normalize, keys=[k for _, k in person.records])
    in_force = latest_consents(profiles=[person.profile_id]).order_by("purpose")
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": plain(exported_at),
        "profile_id": person.profile_id,
        "merged_profile_ids": [p for p in pids if p != person.profile_id],
        "profiles": profiles,
        "traits": _traits(live.traits, live.trait_sources),
        "computed_traits": _rows(
            conn, select(_computed).where(_computed.c.profile_id.in_(pids)).order_by(_computed.c.name)
        ),
        "identifiers": [{"type": t, "value": v} for t, v in person.identifiers],
        "identities": identities,
        "identifier_sets": id_sets,
        "records": records,
        "consents_in_force": _rows(conn, in_force, drop=("profile_id",)),
        "merges": _rows(conn, select(_merges).where(touching).order_by(_merges.c.at, _merges.c.id)),
        "segments": _rows(
            conn, select(_members).where(_members.c.profile_id.in_(pids)).order_by(_members.c.segment)
        ),
        "segment_history": _rows(
            conn,
            select(_history).where(_history.c.profile_id.in_(pids)).order_by(_history.c.entered_at, _history.c.id),
        ),
        "audiences": _mirror_rows(conn, _audience, keys),
        "audiences_staged": _mirror_rows(conn, _pending, keys),
        "quarantine": _by_ids(conn, _quarantine, quarantined_ids(conn, traces), drop=("fingerprint",)),
        "ingest_log": _by_ids(conn, _log, logged_ids(conn, traces), drop=("txid",)),
    }
    return document


def counts(document: Mapping[str, Any]) -> dict[str, Any]:
    """How many entries each section of an export holds (the audit row's details: counts, never values)."""
    out: dict[str, Any] = {}
    for name, value in document.items():
        if name == "records":
            out[name] = {kind: len(rows) for kind, rows in value.items()}
        elif isinstance(value, list):
            out[name] = len(value)
    return out


def _mirror_rows(conn: Connection, table: Table, keys: list[str]) -> list[dict[str, Any]]:
    """An audience mirror table's rows of these member keys (cdp_profiles/audiences.py), without the row hash."""
    order = (table.c.destination, table.c.audience_id, table.c.member_key)
    return _rows(conn, select(table).where(table.c.member_key.in_(keys)).order_by(*order), drop=("row_hash",))


def _traits(values: Any, sources: Any) -> list[dict[str, Any]]:
    """The live profile's traits: value, source stream, set-at time and the record that decided each."""
    loaded = Traits.load(values, sources)
    out = []
    for name in sorted(loaded.values):
        key = loaded.keys.get(name)
        source, set_at = origin(key)
        record = sortkey.record_of(key) if key else None
        out.append({"name": name, "value": plain(loaded.values[name]), "source": source, "set_at": plain(set_at),
                    "record": record or None})  # fmt: skip
    return out


def _origin(sort_key: str | None) -> dict[str, Any]:
    """A sort key (``TIME|STREAM|KEY``) as the time and record it names."""
    if not sort_key:
        return {"first_seen": None, "record": None}
    return {"first_seen": plain(sortkey.decode(sort_key).when), "record": sortkey.record_of(sort_key) or None}


def _by_ids(conn: Connection, table: Table, ids: list[int], drop: Iterable[str]) -> list[dict[str, Any]]:
    """Rows of a kernel table that carry the person (found by their identifiers: a quarantined record or
    a logged message never reached a profile, so this is a search, not a link), in id order."""
    out: list[dict[str, Any]] = []
    for chunk in chunks(ids):
        out += _rows(conn, select(table).where(table.c.id.in_(chunk)).order_by(table.c.id), drop=drop)
    return out
