"""One person as the store knows them: their live profile, the profiles merged into it, and
every identifier and record that belongs to them; found from any identifier."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, select

from cdp_profiles.identity import IdentityConfig
from cdp_profiles.store import tables
from cdp_profiles.store.owners import records_of
from cdp_profiles.store.queries import lookup_profile, merged_ids

_identities, _sets = tables.identities, tables.id_sets


@dataclass
class Person:
    profile_id: str
    """The live profile."""
    profile_ids: list[str]
    """The live profile and every profile merged into it."""
    set_ids: list[str] = field(default_factory=list)
    """The identifier sets resolved to them (each set's records are theirs; their fast-path records have none)."""
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    """Every normalized (type, value) they own or that a set of theirs holds, sorted."""
    records: list[tuple[str, str]] = field(default_factory=list)
    """(stream, key) of every stored record of theirs, of every kind."""
    others: frozenset[tuple[str, str]] = frozenset()
    """Identifiers a set of theirs holds that another person owns (an ``[identity]`` limit kept it there)."""

    @property
    def own(self) -> list[tuple[str, str]]:
        """Their identifiers but those another person owns: what is searched for, suppressed and sent to
        the vendors in their name (a shared phone number must not erase or suppress the other person)."""
        return [i for i in self.identifiers if i not in self.others]


class PersonNotFound(LookupError):
    """No person matches the identifier; the message says why (unknown, ambiguous...)."""


def find_person(engine: Engine, identifier: str, identity: IdentityConfig) -> Person:
    """The person ``identifier`` names (``TYPE:VALUE``, a bare email or phone, ``profile:ID``); a
    merged-away profile leads to the survivor. Raises :class:`PersonNotFound`."""
    found = lookup_profile(engine, identifier, identity)
    if found.profile_id is None:
        raise PersonNotFound(found.problem or f"no profile matches {identifier!r}")
    with engine.connect() as conn:
        return person_of(conn, found.profile_id)


def person_of(conn: Connection, profile_id: str) -> Person:
    """Everything that identifies the live profile ``profile_id``'s person (a few queries, none per row)."""
    pids = [profile_id, *merged_ids(conn, profile_id)]
    sets = conn.execute(select(_sets.c.id, _sets.c.identifiers).where(_sets.c.profile_id.in_(pids))).all()
    set_ids = sorted(row.id for row in sets)
    ids: set[tuple[str, str]] = {(t, v) for row in sets for t, v in row.identifiers}
    owned = conn.execute(select(_identities.c.type, _identities.c.value).where(_identities.c.profile_id.in_(pids)))
    ids.update((row.type, row.value) for row in owned)
    records = conn.execute(records_of(pids)).all()  # through their sets, and on the fast path
    values = sorted({v for _, v in ids})
    owned_elsewhere = select(_identities.c.type, _identities.c.value).where(
        _identities.c.value.in_(values), _identities.c.profile_id.not_in(pids)
    )
    others = {(r.type, r.value) for r in conn.execute(owned_elsewhere)} & ids if values else set()
    return Person(
        profile_id=profile_id,
        profile_ids=pids,
        set_ids=set_ids,
        identifiers=sorted(ids),
        records=sorted((r.stream, r.key) for r in records),
        others=frozenset(others),
    )
