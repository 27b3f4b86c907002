"""Forget a person: delete everything the store holds about them, in one transaction (docs/privacy.md).

:func:`forget` finds the person from any identifier (a merged-away profile leads to the
survivor) and, in one write transaction:

1. queues their removal at every destination (cdp_profiles/privacy/targets.py), while
   the audience mirrors still hold the rows that were sent for them;
2. deletes their rows from the product's tables (cdp_profiles/privacy/erase.py) and the
   quarantine entries that carry them, rewrites the run texts and cursors that quote them
   (cdp_profiles/privacy/run_traces.py);
3. adds their normalized identifiers to the suppression list and writes the audit row,
   both keyed hashes only.

The deleted bytes must not stay readable: on SQLite the transaction runs with
``secure_delete`` and the WAL is checkpointed and truncated after it; on PostgreSQL the
touched tables are vacuumed (:mod:`cdp_profiles.privacy.wipe`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from cdp_core.config import Config
from cdp_core.store.transaction import write_transaction
from cdp_core.timeutil import utc_now
from sqlalchemy import Connection, Engine

from cdp_profiles.identifiers import IdentifierNormalizer
from cdp_profiles.identity import identity_section
from cdp_profiles.privacy import wipe
from cdp_profiles.privacy.audience_keys import person_member_keys
from cdp_profiles.privacy.audit import new_request_id, write_request
from cdp_profiles.privacy.erase import delete_person
from cdp_profiles.privacy.identifiers import asked_for
from cdp_profiles.privacy.keys import PrivacyKey
from cdp_profiles.privacy.person import person_of
from cdp_profiles.privacy.run_traces import delete_logged, delete_quarantined, prune_cursors, scrub_runs
from cdp_profiles.privacy.suppression import add_suppressions
from cdp_profiles.privacy.targets import PENDING, queue_targets
from cdp_profiles.privacy.traces import MARK, Traces
from cdp_profiles.store import tables
from cdp_profiles.store.queries import lookup_profile
from cdp_profiles.store.schema import WRITE_LOCK

FORGET = "forget"
DONE, NOT_FOUND = "done", "not_found"
_requests, _suppressions = tables.privacy_requests, tables.suppressions


class NotFound(LookupError):
    """No person (or more than one) matches; the audit row ``request_id`` says so."""

    def __init__(self, message: str, request_id: str) -> None:
        super().__init__(message)
        self.request_id = request_id


@dataclass
class ForgetReport:
    request_id: str
    outcome: str
    """``done``, or ``pending`` while a destination has still to confirm."""
    deleted: dict[str, int]
    """Table -> rows deleted."""
    scrubbed: dict[str, int]
    """Table -> rows rewritten without the person (run texts, cursors)."""
    suppressed: int
    """Identifiers added to the suppression list (already there: not counted)."""
    destinations: dict[str, str]
    """Destination connector -> ``pending`` or ``unsupported``."""
    erasure: dict[str, Any] = field(default_factory=dict)
    """How the deleted bytes were made unreadable (:mod:`cdp_profiles.privacy.wipe`)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def forget(
    engine: Engine, config: Config, identifier: str, key: PrivacyKey, *, reason: str | None = None,
    now: datetime | None = None,
) -> ForgetReport:  # fmt: skip
    """Forget the person ``identifier`` names; raises :class:`NotFound` (after writing its audit row)."""
    now = now or utc_now()
    identity = identity_section(config)
    normalize = IdentifierNormalizer(identity)
    request_id = new_request_id()
    found = lookup_profile(engine, identifier, identity)
    if found.profile_id is None:
        asked = asked_for(identifier, normalize)
        with write_transaction(engine, lock=WRITE_LOCK) as conn:
            _audit(conn, request_id, key, asked, _scrub_reason(reason, identifier, Traces.of([asked], normalize)),
                   NOT_FOUND, now, details=None)  # fmt: skip
        raise NotFound(f"no profile for {identifier}" + (f" ({found.problem})" if found.problem else ""), request_id)
    matched_type, _, matched_value = (found.matched or "").partition(":")
    with write_transaction(engine, erase=True, lock=WRITE_LOCK) as conn:
        person = person_of(conn, found.profile_id)  # read again under the write lock: a sync may have changed them
        traces = Traces.of(person.own, normalize, keys=[k for _, k in person.records])
        keys = person_member_keys(conn, person)
        destinations = queue_targets(conn, config, request_id, person, keys, key, now)
        deleted = delete_person(conn, person, keys)
        deleted["quarantine"] = delete_quarantined(conn, traces)
        deleted["ingest_log"] = delete_logged(conn, traces)
        scrubbed = {"sync_runs": scrub_runs(conn, traces), "sync_state": prune_cursors(conn, traces)}
        suppressed = add_suppressions(conn, key, person.own, request_id, now)
        outcome = PENDING if PENDING in destinations.values() else DONE
        details = {"deleted": deleted, "scrubbed": scrubbed, "suppressed": suppressed}
        _audit(conn, request_id, key, (matched_type, matched_value), _scrub_reason(reason, identifier, traces),
               outcome, now, details=details)  # fmt: skip
    touched = [table for table, n in {**deleted, **scrubbed}.items() if n]
    erasure = wipe.after_commit(engine, touched)
    return ForgetReport(request_id, outcome, deleted, scrubbed, suppressed, destinations, erasure)


def _scrub_reason(reason: str | None, identifier: str, traces: Traces) -> str | None:
    """The operator's reason without the person's identifiers, nor the identifier as typed."""
    if reason is None:
        return None
    text = traces.scrub(reason)
    typed = identifier.strip()
    return re.sub(re.escape(typed), MARK, text, flags=re.IGNORECASE) if typed else text




def _audit(
    conn: Connection, request_id: str, key: PrivacyKey, asked: tuple[str, str], reason: str | None, outcome: str,
    now: datetime, *, details: dict[str, Any] | None,
) -> None:  # fmt: skip
    write_request(
        conn, FORGET, outcome, created_at=now, finished_at=None if outcome == PENDING else now,
        subject=key.hash_identifier(*asked), reason=reason, details=details, request_id=request_id,
    )  # fmt: skip
