"""One person's data as plain Python, for in-memory evaluation (and how to load it from the store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection


@dataclass
class Person:
    """Everything the rules read about one person.

    Rows are dicts with the store's column names (and ``stream``, ``key``): events
    ``name, properties, occurred_at``; orders ``order_id, amount, currency, status,
    occurred_at``; nps ``score, category, comment, survey, channel, answered_at``;
    consents ``purpose, status, source, occurred_at``; identities ``type, value, first_seen``.
    """

    profile_id: str
    traits: dict[str, Any] = field(default_factory=dict)
    identities: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    nps: list[dict[str, Any]] = field(default_factory=list)
    consents: list[dict[str, Any]] = field(default_factory=list)


def load_person(conn: Connection, profile_id: str) -> Person | None:
    """The live profile ``profile_id``'s data, in a few queries (one per kind); None if it is not live."""
    raise NotImplementedError
