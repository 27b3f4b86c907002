"""Queueing a forget at every destination: one ``privacy_targets`` row per destination connector.

Called by forget inside its transaction, before the person's audience mirror rows are
deleted: a destination whose class ``supports_forget`` gets a ``pending`` row holding the
sealed :class:`cdp_core.ForgetSubject` (its identifiers and the rows its mirror held for
them); any other destination an ``unsupported`` row, so ``cdp privacy status`` tells the
operator to act by hand. The profile store itself is not a target: forget empties it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from cdp_core.config import Config
from cdp_core.forget import AudienceRow, ForgetSubject
from sqlalchemy import Connection, insert, select

from cdp_profiles.privacy.keys import PrivacyKey
from cdp_profiles.privacy.person import Person
from cdp_profiles.store import tables

PENDING, DONE, FAILED, UNSUPPORTED = "pending", "done", "failed", "unsupported"
_targets, _audience = tables.privacy_targets, tables.audience_members
_STORE_TYPES = frozenset({"profile_store"})


def destinations_of(config: Config) -> dict[str, bool]:
    """Every destination connector but the profile store -> whether it can forget a person."""
    out: dict[str, bool] = {}
    for name, connector in sorted(config.connectors.items()):
        reg = connector.roles.get("destination")
        if reg is not None and connector.type not in _STORE_TYPES:
            out[name] = bool(getattr(reg.cls, "supports_forget", False))
    return out


def queue_targets(
    conn: Connection,
    config: Config,
    request_id: str,
    person: Person,
    member_keys: list[str],
    key: PrivacyKey,
    now: datetime,
) -> dict[str, str]:
    """Write one target row per destination for ``request_id``; returns destination -> state.

    ``member_keys``: the person's audience member keys (cdp_profiles/audiences.py), whose
    mirror rows go to their destination's subject.
    """
    rows: dict[str, list[AudienceRow]] = defaultdict(list)
    if member_keys:
        found = conn.execute(
            select(_audience.c.destination, _audience.c.audience_id, _audience.c.row).where(
                _audience.c.member_key.in_(member_keys)
            )
        )
        for r in found:
            rows[r.destination].append(AudienceRow(audience_id=r.audience_id, row=r.row))
    identifiers: dict[str, list[str]] = defaultdict(list)
    for type_name, value in person.own:
        identifiers[type_name].append(value)
    states: dict[str, str] = {}
    values = []
    for name, supported in destinations_of(config).items():
        state = PENDING if supported else UNSUPPORTED
        payload = None
        if supported:
            subject = ForgetSubject(identifiers=dict(identifiers), audience_rows=rows.get(name, []))
            payload = key.seal(subject.model_dump_json().encode())
        values.append(
            {"request_id": request_id, "destination": name, "state": state, "attempts": 0,
             "next_attempt_at": now if supported else None, "answer": None, "payload": payload, "updated_at": now}
        )  # fmt: skip
        states[name] = state
    if values:
        conn.execute(insert(_targets), values)
    return states
