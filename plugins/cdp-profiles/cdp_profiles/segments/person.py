"""One person's data as plain Python, for in-memory evaluation (and how to load it from the store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, select

from cdp_profiles.store import tables
from cdp_profiles.store.owners import owned
from cdp_profiles.store.trait_docs import trait_values


@dataclass
class Person:
    """Everything the rules read about one person.

    Rows are dicts with the store's column names (and ``stream``, ``key``): events
    ``name, properties, occurred_at``; orders ``order_id, amount, currency, status,
    occurred_at``; nps ``score, category, comment, survey, channel, answered_at``;
    consents ``purpose, status, source, occurred_at``; identities ``type, value, first_seen``.
    Times may be naive (UTC) or aware.
    """

    profile_id: str
    traits: dict[str, Any] = field(default_factory=dict)
    identities: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    nps: list[dict[str, Any]] = field(default_factory=list)
    consents: list[dict[str, Any]] = field(default_factory=list)
    stored: dict[str, Any] = field(default_factory=dict)
    """Traits the analytics wrote (``computed_traits``: ``rfm_group``, ``clv_p_alive``...): name -> value."""


_profiles = tables.profiles
_identities = tables.identities
_computed = tables.computed_traits
_KINDS: dict[str, Table] = {
    "events": tables.events,
    "orders": tables.orders,
    "nps": tables.nps_responses,
    "consents": tables.consents,
}


def load_person(conn: Connection, profile_id: str) -> Person | None:
    """The live profile ``profile_id``'s data: one query per kind of row; None if it is not a live profile."""
    row = conn.execute(
        select(_profiles.c.traits).where(_profiles.c.id == profile_id, _profiles.c.merged_into.is_(None))
    ).first()
    if row is None:
        return None
    person = Person(profile_id, traits=trait_values(row.traits))
    ids = select(_identities.c.type, _identities.c.value, _identities.c.first_seen)
    person.identities = [dict(r._mapping) for r in conn.execute(ids.where(_identities.c.profile_id == profile_id))]
    for kind, table in _KINDS.items():
        stmt = select(table).select_from(owned(table, [profile_id])[0])
        setattr(person, kind, [dict(r._mapping) for r in conn.execute(stmt)])
    stored = select(_computed.c.name, _computed.c.value).where(_computed.c.profile_id == profile_id)
    person.stored = {r.name: r.value for r in conn.execute(stored)}
    return person
