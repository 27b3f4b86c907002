"""Audience mirrors: keep an ad platform's audience equal to the people a destination is fed.

An ad destination (``meta_audiences``, ``google_ads``) is fed every person who
should be in its audience on every run (the profile store's ``profiles_all``
stream through a ``filter``). It must not upload everyone each time, and it must
remove the people who are no longer fed. :class:`AudienceMirror` does the
bookkeeping, in the store's database (tables declared in cdp_profiles/store/audience_models.py):

1. ``write()`` -> :meth:`AudienceMirror.stage`: every member fed is recorded
   durably in ``audience_pending`` under a stable *member key* (the SHA-256 of
   its normalized primary identifier, :func:`member_key`) with the hashed row the
   destination would upload and that row's hash. Staging survives a failed run:
   a run that resumes a source mid-read (the cursor of ``profiles_all`` moves on
   after every page) still ends with the whole input staged.
2. ``finish()`` (called only when every source read to its end without error)
   -> :meth:`AudienceMirror.plan`, then :meth:`upserts` (members new to the
   audience, and members whose row changed) and :meth:`removals` (members
   confirmed uploaded earlier and not fed in this pass), in chunks, compared with
   ``audience_members``: what was last *confirmed* uploaded.
3. After each successful upload the destination confirms what the platform took
   (:meth:`confirm_upserted`, :meth:`confirm_removed`, or :meth:`confirm_all`
   after an asynchronous job was started), and at the very end
   :meth:`clear_pending` starts the next pass afresh, whether the upload worked or
   not: ``audience_members`` only ever holds what was confirmed, so the next
   complete pass sends again whatever did not go through.

A person the consent gate holds back (no consent for the destination's purpose,
docs/consent.md) never reaches ``write()``: not staged, so the next complete pass
removes them like anyone no longer fed.

A run that fails (``finish()`` not called) changes nothing on the platform and
nothing in ``audience_members``. A first run (no confirmed members) is a full
upload: every staged member is an upsert and there are no removals.

Only hashed values are stored (``row`` is what goes on the wire, never a raw
email or phone). One mirror is one ``(destination connector, audience id)``; feed
each audience connector from one graph.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from cdp_core.base import Destination
from cdp_core.fieldpaths import lookup
from cdp_core.records import Record
from cdp_core.store.checkpoint import Checkpoint
from cdp_core.store.engine import make_engine
from cdp_core.store.sql import upsert, upsert_statement
from cdp_core.timeutil import utc_now
from sqlalchemy import Connection, Engine, Table, and_, delete, func, literal, not_, or_, select

from cdp_profiles.store import tables
from cdp_profiles.store.schema import ensure_schema

__all__ = [
    "MAX_ROWS_PER_REQUEST",
    "AudienceMirror",
    "AudiencePlan",
    "Change",
    "Member",
    "PersonFields",
    "chunked",
    "member_key",
    "person_fields",
    "row_hash",
    "sha256_hex",
]

MAX_ROWS_PER_REQUEST = 10_000
"""Meta takes at most 10,000 rows per request; Google recommends about 10,000 identifiers."""

_members: Table = tables.audience_members
_pending: Table = tables.audience_pending
_MEMBER_KEY = ("destination", "audience_id", "member_key")


# -- hashing ---------------------------------------------------------------------------------


def sha256_hex(text: str) -> str:
    """SHA-256 of the UTF-8 bytes of ``text``, as 64 lower-case hex digits (what both platforms want)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def member_key(kind: str, normalized: str) -> str:
    """The stable key of an audience member: SHA-256 of ``"KIND:VALUE"`` of its primary identifier.

    ``kind`` names the identifier (``email``, ``phone``...), so an email and a phone
    number never share a key. The key is a digest: the state tables hold no raw value.
    """
    return sha256_hex(f"{kind}:{normalized}")


def row_hash(row: Any) -> str:
    """SHA-256 of the canonical JSON of a hashed row: tells whether a member's row changed."""
    return sha256_hex(json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def chunked(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``items`` in slices of at most ``size``."""
    if size < 1:
        raise ValueError("chunk size must be >= 1")
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- what a record says about the person ---------------------------------------------------------

PersonField = Literal[
    "email", "phone", "first_name", "last_name", "city", "state", "zip", "country", "gender", "birthday", "extern_id"
]

DEFAULT_SOURCES: dict[str, tuple[str, ...]] = {
    "email": ("identifiers.email", "email", "email_address"),
    "phone": ("identifiers.phone", "phone", "phone_number", "mobile"),
    "first_name": ("first_name", "firstname", "given_name"),
    "last_name": ("last_name", "lastname", "family_name"),
    "city": ("city",),
    "state": ("state", "region"),
    "zip": ("zip", "postal_code", "zip_code", "postcode"),
    "country": ("country", "country_code"),
    "gender": ("gender",),
    "birthday": ("birthday", "date_of_birth", "birthdate"),
    "extern_id": ("profile_id",),
}
"""Where each field is looked for, first match wins: ``identifiers.TYPE`` or a key of ``data``
(dots go into nested objects). The profile store's records have traits in ``data``
and normalized identifiers (email lower-case, phone E.164) in ``identifiers``."""


@dataclass(frozen=True)
class PersonFields:
    """The raw values of a person's matching fields (None: absent or blank); normalize before hashing."""

    values: Mapping[str, Any]

    def get(self, name: str) -> Any:
        """The field's value; of several (an identifier with a list of values), the first: the primary one."""
        value = self.values.get(name)
        if isinstance(value, list):
            return next((v for v in value if _present(v)), None)
        return value

    def all(self, name: str) -> list[Any]:
        """Every value of the field, the primary first (``[]`` when absent): for a platform that matches
        on several emails or phones of one person."""
        value = self.values.get(name)
        if isinstance(value, list):
            return [v for v in value if _present(v)]
        return [] if value is None else [value]


def _lookup(record: Record, path: str) -> Any:
    """``identifiers.TYPE``, or a field of the data (``data.`` optional) by the kernel's field-path rule."""
    if path.startswith("identifiers."):
        return record.identifiers.get(path.removeprefix("identifiers."))
    return lookup(record.data, path.removeprefix("data."))


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list):
        return any(_present(v) for v in value)
    return True


def person_fields(record: Record, overrides: Mapping[str, str] | None = None) -> PersonFields:
    """The matching fields of ``record``: each from the first of its sources that has a value.

    ``overrides`` maps a field (``first_name``) to the one path to read it from
    (``"data.vorname"``, ``"vorname"`` or ``"identifiers.crm_id"``), replacing the defaults.
    """
    values: dict[str, Any] = {}
    overrides = overrides or {}
    for name, sources in DEFAULT_SOURCES.items():
        paths = (overrides[name],) if name in overrides else sources
        for path in paths:
            value = _lookup(record, path)
            if _present(value):
                values[name] = value
                break
    for name, path in overrides.items():  # extra fields a platform may know
        if name not in values and name not in DEFAULT_SOURCES:
            value = _lookup(record, path)
            if _present(value):
                values[name] = value
    return PersonFields(values)


def as_text(value: Any) -> str | None:
    """A value as NFC text (dates in ISO form), or None when blank."""
    if value is None:
        return None
    if isinstance(value, (datetime, date)):
        value = value.isoformat()
    text = unicodedata.normalize("NFC", str(value)).strip()
    return text or None


# -- the mirror ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One member as a destination would upload it: its key, its hashed row and the record it came from."""

    key: str
    row: Any
    record_key: str = ""
    hash: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.hash:
            object.__setattr__(self, "hash", row_hash(self.row))


@dataclass(frozen=True)
class Change:
    """An upsert: ``kind`` is ``"add"`` (new to the audience) or ``"change"`` (its row differs)."""

    member: Member
    kind: Literal["add", "change"]
    previous: Any = None
    """The row last confirmed uploaded, for a change."""


@dataclass(frozen=True)
class AudiencePlan:
    """What ``finish()`` is about to send: counts only (the rows come from :meth:`AudienceMirror.upserts` / removals)."""

    staged: int
    confirmed: int
    additions: int
    changed: int
    removals: int

    @property
    def unchanged(self) -> int:
        return self.staged - self.additions - self.changed

    @property
    def first_upload(self) -> bool:
        """No member was ever confirmed uploaded: a full upload."""
        return self.confirmed == 0

    @property
    def empties_audience(self) -> bool:
        """Nobody was fed, yet the audience has members: everyone would be removed."""
        return self.staged == 0 and self.confirmed > 0

    def __str__(self) -> str:
        return (
            f"{self.staged} members fed, {self.confirmed} uploaded before: {self.additions} to add, "
            f"{self.changed} changed, {self.removals} to remove, {self.unchanged} unchanged"
        )


class AudienceMirror:
    """The mirror state of one audience of one destination connector, in the store's database.

    :param store_url: the store's URL (``context.store_url``); the tables are created
        (migrated) by :meth:`open`.
    :param destination: the destination connector's name (``context.name``).
    :param audience_id: the audience (Meta) or user list (Google) id.
    """

    def __init__(self, store_url: str, destination: str, audience_id: str, *, engine: Engine | None = None) -> None:
        self.store_url = store_url
        self.destination = destination
        self.audience_id = str(audience_id)
        self._engine = engine
        self._owns_engine = engine is None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.store_url)
        return self._engine

    def open(self) -> AudienceMirror:
        """Make sure the tables exist (migrates the store to head); cheap when they do."""
        ensure_schema(self.engine)
        return self

    def close(self) -> None:
        if self._engine is not None and self._owns_engine:
            self._engine.dispose()
            self._engine = None

    def _mine(self, table: Table) -> Any:
        return and_(table.c.destination == self.destination, table.c.audience_id == self.audience_id)

    # -- staging (write) ---------------------------------------------------------------------

    def stage(self, members: Iterable[Member], run_id: str | None = None) -> int:
        """Record ``members`` as fed in this pass, durably (one statement); a member staged again is replaced.

        Returns the number of distinct members staged.
        """
        unique: dict[str, Member] = {}
        for member in members:
            unique[member.key] = member  # the last delivery of a key wins
        if not unique:
            return 0
        now = utc_now()
        rows = [
            {
                "destination": self.destination,
                "audience_id": self.audience_id,
                "member_key": m.key,
                "record_key": m.record_key,
                "row": m.row,
                "row_hash": m.hash,
                "run_id": run_id,
                "staged_at": now,
            }
            for m in unique.values()
        ]
        with self.engine.begin() as conn:
            upsert(conn, _pending, rows, _MEMBER_KEY)
        return len(rows)

    def staged_record_keys(self) -> list[str]:
        """The record keys of the members staged in the current pass (one per member)."""
        with self.engine.connect() as conn:
            stmt = select(_pending.c.record_key).where(self._mine(_pending)).order_by(_pending.c.member_key)
            return list(conn.execute(stmt).scalars())

    def clear_pending(self) -> int:
        """End the pass: forget what was staged (``finish()`` calls it last, whatever the upload's outcome)."""
        with self.engine.begin() as conn:
            return conn.execute(delete(_pending).where(self._mine(_pending))).rowcount or 0

    # -- the diff (finish) ----------------------------------------------------------------------

    def _join(self) -> Any:
        return _pending.outerjoin(
            _members,
            and_(
                _members.c.destination == _pending.c.destination,
                _members.c.audience_id == _pending.c.audience_id,
                _members.c.member_key == _pending.c.member_key,
            ),
        )

    def _not_fed(self) -> Any:
        return not_(
            select(literal(1))
            .where(
                _pending.c.destination == _members.c.destination,
                _pending.c.audience_id == _members.c.audience_id,
                _pending.c.member_key == _members.c.member_key,
            )
            .exists()
        )

    def plan(self) -> AudiencePlan:
        """Counts of what the pass staged against what was confirmed: additions, changes, removals."""
        with self.engine.connect() as conn:
            staged = conn.execute(select(func.count()).select_from(_pending).where(self._mine(_pending))).scalar_one()
            confirmed = conn.execute(
                select(func.count()).select_from(_members).where(self._mine(_members))
            ).scalar_one()
            join = self._join()
            additions = conn.execute(
                select(func.count()).select_from(join).where(self._mine(_pending), _members.c.member_key.is_(None))
            ).scalar_one()
            changed = conn.execute(
                select(func.count())
                .select_from(join)
                .where(
                    self._mine(_pending), _members.c.member_key.is_not(None), _members.c.row_hash != _pending.c.row_hash
                )
            ).scalar_one()
            removals = conn.execute(
                select(func.count()).select_from(_members).where(self._mine(_members), self._not_fed())
            ).scalar_one()
        return AudiencePlan(staged=staged, confirmed=confirmed, additions=additions, changed=changed, removals=removals)

    def upserts(self, chunk_size: int = MAX_ROWS_PER_REQUEST) -> Iterator[list[Change]]:
        """Staged members that are new or whose row changed, in member-key order, ``chunk_size`` at a time.

        Pages by key, so confirming a chunk while iterating is safe.
        """
        after = ""
        while True:
            stmt = (
                select(
                    _pending.c.member_key,
                    _pending.c.record_key,
                    _pending.c.row,
                    _pending.c.row_hash,
                    _members.c.member_key.label("known"),
                    _members.c.row.label("previous"),
                )
                .select_from(self._join())
                .where(
                    self._mine(_pending),
                    _pending.c.member_key > after,
                    or_(_members.c.member_key.is_(None), _members.c.row_hash != _pending.c.row_hash),
                )
                .order_by(_pending.c.member_key)
                .limit(chunk_size)
            )
            with self.engine.connect() as conn:
                rows = conn.execute(stmt).all()
            if not rows:
                return
            yield [
                Change(
                    Member(r.member_key, r.row, r.record_key, r.row_hash),
                    "add" if r.known is None else "change",
                    r.previous,
                )
                for r in rows
            ]
            after = rows[-1].member_key

    def removals(self, chunk_size: int = MAX_ROWS_PER_REQUEST) -> Iterator[list[Member]]:
        """Members confirmed uploaded earlier and not fed in this pass, with the row they were uploaded with."""
        after = ""
        while True:
            stmt = (
                select(_members.c.member_key, _members.c.row, _members.c.row_hash)
                .where(self._mine(_members), _members.c.member_key > after, self._not_fed())
                .order_by(_members.c.member_key)
                .limit(chunk_size)
            )
            with self.engine.connect() as conn:
                rows = conn.execute(stmt).all()
            if not rows:
                return
            yield [Member(r.member_key, r.row, "", r.row_hash) for r in rows]
            after = rows[-1].member_key

    # -- confirming what the platform took ---------------------------------------------------------

    def confirm_upserted(self, members: Iterable[Member], at: datetime | None = None) -> int:
        """The platform took these rows: they are now what the audience was last sent."""
        with self.engine.begin() as conn:
            return self._upsert_members(conn, members, at or utc_now())

    def _upsert_members(self, conn: Connection, members: Iterable[Member], now: datetime) -> int:
        rows = [
            {
                "destination": self.destination,
                "audience_id": self.audience_id,
                "member_key": m.key,
                "row": m.row,
                "row_hash": m.hash,
                "uploaded_at": now,
            }
            for m in {m.key: m for m in members}.values()
        ]
        upsert(conn, _members, rows, _MEMBER_KEY)
        return len(rows)

    def confirm_removed(self, members: Iterable[Member]) -> int:
        """The platform took the removal of these members."""
        keys = sorted({m.key for m in members})
        removed = 0
        with self.engine.begin() as conn:
            for part in chunked(keys, 5_000):
                stmt = delete(_members).where(self._mine(_members), _members.c.member_key.in_(list(part)))
                removed += conn.execute(stmt).rowcount or 0
        return removed

    def confirm_all(
        self,
        *,
        failed_upserts: Iterable[str] = (),
        failed_removals: Iterable[Member] = (),
        at: datetime | None = None,
    ) -> None:
        """The platform took the whole diff (an asynchronous job was started): make the confirmed state the staged one.

        Set-based, in one transaction. ``failed_upserts`` (member keys) and
        ``failed_removals`` are operations the platform refused: they are left
        unconfirmed (a refused upsert is forgotten, a refused removal is kept), so the
        next complete pass sends them again.
        """
        now = at or utc_now()
        with self.engine.begin() as conn:
            conn.execute(delete(_members).where(self._mine(_members), self._not_fed()))
            source = select(
                _pending.c.destination,
                _pending.c.audience_id,
                _pending.c.member_key,
                _pending.c.row,
                _pending.c.row_hash,
                literal(now, _members.c.uploaded_at.type).label("uploaded_at"),
            ).where(self._mine(_pending))
            columns = ["destination", "audience_id", "member_key", "row", "row_hash", "uploaded_at"]
            stmt = upsert_statement(
                conn.dialect.name,
                _members,
                _MEMBER_KEY,
                ["row", "row_hash", "uploaded_at"],
                select=source,
                columns=columns,
                where=lambda new: _members.c.row_hash != new.row_hash,
            )
            conn.execute(stmt)
            for part in chunked(sorted(set(failed_upserts)), 5_000):
                conn.execute(delete(_members).where(self._mine(_members), _members.c.member_key.in_(list(part))))
            self._upsert_members(conn, failed_removals, now)

    def confirmed(self) -> dict[str, Any]:
        """Member key -> the row last confirmed uploaded (for tests and inspection)."""
        with self.engine.connect() as conn:
            stmt = select(_members.c.member_key, _members.c.row).where(self._mine(_members))
            return {r.member_key: r.row for r in conn.execute(stmt)}

    def forget(self) -> None:
        """Drop every state row of this audience (the audience was emptied or replaced on the platform)."""
        with self.engine.begin() as conn:
            conn.execute(delete(_members).where(self._mine(_members)))
            conn.execute(delete(_pending).where(self._mine(_pending)))


class MirrorDestination(Destination):
    """The run of an audience destination, shared by every ad platform's plugin.

    ``write`` stages each record as a member (or quarantines it with the reason
    :meth:`build_member` gives); ``finish`` plans the difference with what was last
    confirmed and hands it to :meth:`upload`; staging is cleared whatever happens.
    A subclass sets ``self.mirror`` (and ``self.client``, closed with it) in its
    constructor and implements the three platform-specific methods.
    """

    mirror: AudienceMirror
    client: Any = None

    @property
    def audience_label(self) -> str:
        """How log lines and errors name the audience, e.g. ``Meta audience 2385...``."""
        raise NotImplementedError

    def build_member(self, record: Record) -> Member | list[Member] | str:
        """The member a record stands for (or the members: a platform that takes one email a row gets a row
        per email of the person), or why it cannot be sent."""
        raise NotImplementedError

    def upload(self, plan: AudiencePlan) -> None:
        """Send the plan's removals and upserts, confirming what the platform took."""
        raise NotImplementedError

    def open(self) -> None:
        self.mirror.open()

    def write(self, batch: list[Record], checkpoint: Checkpoint) -> None:
        members = []
        for record in batch:
            member = self.build_member(record)
            if isinstance(member, str):
                checkpoint.reject(record, member)
            elif isinstance(member, list):
                members.extend(member)
            else:
                members.append(member)
        self.mirror.stage(members, run_id=checkpoint.run_id)

    def finish(self) -> None:
        try:
            plan = self.mirror.plan()
            what = "first upload" if plan.first_upload else "sync"
            self.context.logger.info("%s, %s: %s", self.audience_label, what, plan)
            if plan.empties_audience and not getattr(self.config, "allow_empty", False):
                raise RuntimeError(
                    f"connector {self.context.name!r}: nobody was fed, and removing all {plan.confirmed} members of "
                    f"{self.audience_label} looks like a mistake (a filter that matches nobody?); "
                    "set allow_empty = true to allow it"
                )
            if plan.additions or plan.changed or plan.removals:
                self.upload(plan)
        finally:
            self.mirror.clear_pending()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.mirror.close()

    def staged_record_keys(self) -> list[str]:
        """The keys of the records staged in this pass (what the destination holds until finish)."""
        return self.mirror.staged_record_keys()
