"""People written straight into the store's tables, for the segment engine's tests.

Each :class:`~cdp_profiles.segments.Person` gets a live profile, one identifier set
holding all its rows, its identities, and its events, orders, NPS answers and consents;
:func:`store_people` also adds an anonymous order (no set) and a merged-away profile,
which no segment may ever select.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, insert

from cdp_profiles.segments import Person
from cdp_profiles.store import tables

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2020, 1, 1, tzinfo=UTC)
_ROWS = {"events": tables.events, "orders": tables.orders, "nps": tables.nps_responses, "consents": tables.consents}
_TIME = {"events": "occurred_at", "orders": "occurred_at", "nps": "answered_at", "consents": "occurred_at"}
TABLES = [tables.profiles, tables.id_sets, tables.record_index, tables.identities, *_ROWS.values()]


def clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(delete(table))


def store_people(engine: Engine, people: list[Person], merged_traits: dict[str, Any] | None = None) -> None:
    """Write ``people`` (stream/key of each row are filled in when missing)."""
    profiles: list[dict[str, Any]] = []
    sets: list[dict[str, Any]] = []
    index: list[dict[str, Any]] = []
    identities: list[dict[str, Any]] = []
    rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in _ROWS}
    for n, person in enumerate(people):
        pid = person.profile_id
        profiles.append({"id": pid, "founder": f"s{n}", "sort_key": f"k{n}", "created_at": T0, "updated_at": T0,
                         "traits": person.traits, "trait_sources": {}, "merged_into": None})  # fmt: skip
        sets.append({"id": f"s{n}", "identifiers": {}, "sort_key": f"k{n}", "profile_id": pid})
        identities += [{**i, "profile_id": pid} for i in person.identities]
        for kind in _ROWS:
            for r, row in enumerate(getattr(person, kind)):
                row.setdefault("stream", f"src{r % 2}")
                row.setdefault("key", f"{pid}-{kind}-{r}")
                stored = dict(row)
                rows[kind].append(stored)
                index.append({"stream": row["stream"], "key": row["key"], "kind": kind, "set_id": f"s{n}",
                              "occurred_at": stored.get(_TIME[kind]), "updated_at": T0})  # fmt: skip
    # nobody's: an anonymous order, and a profile merged away (its traits would match anything)
    rows["orders"].append({"stream": "src0", "key": "anonymous", "order_id": "x", "amount": 999, "status": "paid",
                           "currency": "EUR", "items": None, "occurred_at": NOW})  # fmt: skip
    index.append({"stream": "src0", "key": "anonymous", "kind": "orders", "set_id": None, "occurred_at": None,
                  "updated_at": T0})  # fmt: skip
    if people:
        profiles.append({"id": "merged", "founder": "-", "sort_key": "-", "created_at": T0, "updated_at": T0,
                         "traits": merged_traits or {}, "trait_sources": {}, "merged_into": people[0].profile_id})  # fmt: skip
    with engine.begin() as conn:
        for table, values in ((tables.profiles, profiles), (tables.id_sets, sets), (tables.record_index, index), (tables.identities, identities)):
            if values:
                conn.execute(insert(table), values)
        for kind, table in _ROWS.items():
            if rows[kind]:
                conn.execute(insert(table), rows[kind])
