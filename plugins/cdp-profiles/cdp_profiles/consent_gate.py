"""The consent gate: every person sent to a destination is checked against their latest consent for its purpose.

The profile product answers the kernel's ``cdp_export_gate`` hook with a
:class:`ConsentGate` for every destination node that serves a purpose
(docs/consent.md). Per batch, set-based, at sending time (nothing is cached
across batches):

1. *Who is it?* A record read from the profile store names its profile
   (``data.profile_id`` of the ``profiles`` streams, ``identifiers.cdp_profile_id`` of
   the record streams); one query maps those ids to the live profile (a merged
   profile to its survivor). Any other record is looked up by its identifiers,
   normalized as the store normalizes them, in ``identities``: one query per batch.
   A record whose identifiers lead to several people stands for all of them.
2. *What did they decide?* One query: the latest decision for the purpose of those
   profiles (:func:`cdp_profiles.consent.latest_consents`).
3. *May they be sent?* :func:`cdp_profiles.consent.allowed` under the purpose's policy;
   an unknown person has no decision (``opt_in``: held back; ``opt_out``: sent).

Reasons: ``no ads consent`` (opt-in, never granted), ``ads consent denied``,
``ads consent revoked``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from cdp_core.base import ConnectorContext
from cdp_core.gates import ExportGate, GateResult
from cdp_core.records import Record
from cdp_core.store.engine import make_engine
from sqlalchemy import Connection, Engine, func, select, tuple_

from cdp_profiles.consent import Policy, allowed, consent_of, latest_consents
from cdp_profiles.identifiers import IdentifierNormalizer
from cdp_profiles.identity import IdentityConfig
from cdp_profiles.store import tables
from cdp_profiles.store.schema import ensure_schema

PROFILE_ID_FIELD = "profile_id"
"""Where the profile store's ``profiles`` streams put the profile id (``Record.data``)."""
PROFILE_ID_IDENTIFIER = "cdp_profile_id"
"""Where its record streams (events, orders, NPS answers) put it (``Record.identifiers``)."""

_CHUNK = 5_000
"""Values per ``IN (...)``: well below the databases' limits on bound parameters."""

_profiles = tables.profiles
_identities = tables.identities


def withheld_reason(purpose: str, status: str | None) -> str:
    """Why a person whose latest decision is ``status`` is held back from ``purpose``."""
    return f"no {purpose} consent" if status is None or status == "granted" else f"{purpose} consent {status}"


class ConsentGate(ExportGate):
    """Keeps the records of people who may be sent for ``purpose``, batch by batch."""

    def __init__(self, context: ConnectorContext, purpose: str) -> None:
        self.purpose = purpose
        consent = consent_of(context.sections)
        try:
            self.policy: Policy = consent.policy(purpose)
        except KeyError:
            known = ", ".join(consent.all_purposes()) or "none"
            raise ValueError(f"unknown consent purpose {purpose!r}; purposes: {known}") from None
        self.store_url = context.store_url
        identity = context.sections.get("identity")
        self._identity = identity if isinstance(identity, IdentityConfig) else IdentityConfig()
        self._engine: Engine | None = None
        self._normalizer: IdentifierNormalizer | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.store_url)
            ensure_schema(self._engine)
            self._normalizer = IdentifierNormalizer(self._identity)
        return self._engine

    def check(self, batch: list[Record]) -> GateResult:
        engine = self.engine
        with engine.connect() as conn:
            people = self._people(conn, batch)
            decisions = self.decisions(conn, {pid for pids in people for pid in pids})
        kept: list[Record] = []
        held: dict[str, int] = {}
        for record, pids in zip(batch, people, strict=True):
            statuses = [decisions.get(pid) for pid in pids] or [None]  # an unknown person: no decision
            refused = [s for s in statuses if not allowed(s, self.policy)]
            if refused:  # several people behind one record: sent only if every one of them may be
                reason = withheld_reason(self.purpose, refused[0])
                held[reason] = held.get(reason, 0) + 1
            else:
                kept.append(record)
        return kept, held

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- set-based look-ups -------------------------------------------------------------------

    def decisions(self, conn: Connection, profile_ids: Collection[str]) -> dict[str, str]:
        """Live profile id -> its latest decision's status for the purpose (absent: none)."""
        found: dict[str, str] = {}
        ids = sorted(profile_ids)
        for start in range(0, len(ids), _CHUNK):
            stmt = latest_consents([self.purpose], profiles=ids[start : start + _CHUNK])
            found.update({row.profile_id: row.status for row in conn.execute(stmt)})
        return found

    def _people(self, conn: Connection, batch: list[Record]) -> list[set[str]]:
        """For each record, the live profiles it stands for (empty: nobody the store knows)."""
        named = [_named_profile(r) for r in batch]
        live = _live_profiles(conn, {pid for pid in named if pid is not None})
        people: list[set[str]] = []
        wanted: dict[int, list[tuple[str, str]]] = {}
        for i, (record, pid) in enumerate(zip(batch, named, strict=True)):
            if pid is not None and pid in live:
                people.append({live[pid]})
                continue
            people.append(set())
            wanted[i] = self._identifiers(record)
        owners = _owners(conn, {pair for pairs in wanted.values() for pair in pairs})
        for i, pairs in wanted.items():
            people[i] = {owners[pair] for pair in pairs if pair in owners}
        return people

    def _identifiers(self, record: Record) -> list[tuple[str, str]]:
        assert self._normalizer is not None
        pairs = []
        for type_name, value in record.identifier_pairs():
            if type_name == PROFILE_ID_IDENTIFIER:
                continue
            normalized, _ = self._normalizer(type_name, value)
            if normalized is not None:
                pairs.append((type_name, normalized))
        return pairs


def _named_profile(record: Record) -> str | None:
    value = record.first_identifier(PROFILE_ID_IDENTIFIER) or record.data.get(PROFILE_ID_FIELD)
    return value if isinstance(value, str) and value else None


def _live_profiles(conn: Connection, ids: Iterable[str]) -> dict[str, str]:
    """Profile id -> the live profile it is now (itself, or the survivor it was merged into)."""
    found: dict[str, str] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        live = func.coalesce(_profiles.c.merged_into, _profiles.c.id)
        stmt = select(_profiles.c.id, live.label("live")).where(_profiles.c.id.in_(chunk))
        found.update({r.id: r.live for r in conn.execute(stmt)})
    return found


def _owners(conn: Connection, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(type, normalized value) -> the live profile that owns the identifier."""
    found: dict[tuple[str, str], str] = {}
    ordered = sorted(pairs)
    live = func.coalesce(_profiles.c.merged_into, _profiles.c.id)
    join = _identities.join(_profiles, _profiles.c.id == _identities.c.profile_id)
    for start in range(0, len(ordered), _CHUNK // 2):  # two values a pair
        chunk = ordered[start : start + _CHUNK // 2]
        match = tuple_(_identities.c.type, _identities.c.value).in_(chunk)
        stmt = select(_identities.c.type, _identities.c.value, live.label("live")).select_from(join).where(match)
        found.update({(r.type, r.value): r.live for r in conn.execute(stmt)})
    return found
