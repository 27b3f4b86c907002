"""Profile tables: the identity graph, unified profiles, and what people did.

Records are stored as they came (keyed by ``(stream, key)``, so a re-delivery
updates); profiles, identities and traits are *derived* from them by identity
resolution (cdp_profiles/identity.py), component by component. That is what makes
the result independent of batch size and record order.

- ``id_sets``: each distinct set of normalized identifiers seen on a record, with
  the canonical ``sort_key`` of its earliest record and the profile it resolved to.
- ``id_set_members``: (type, value) -> set, for the identifiers a set holds that its own
  profile does not own (unowned, or kept with another profile by a limit). The rest of the
  graph's edges need no row: ``identities`` leads to the owner, ``id_sets.profile_id`` to its sets.
- ``record_index``: every stored record -> its kind and identifier set (none for
  an anonymous event, order or NPS answer: it counts, but belongs to nobody).
  An event, order or NPS answer whose identifiers all belonged to one profile when it
  arrived (the common case) takes the activity fast path instead (cdp_profiles/store/activity.py):
  no identifier set, but ``profile_id`` and its ``identifiers``. Its person is
  ``COALESCE(id_sets.profile_id, record_index.profile_id)`` (:func:`cdp_profiles.store.owners.owner_of`);
  a replay that reaches that profile first gives such records their set (they then
  take part in resolution like any record), so ``profile_id`` always names a live profile.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Index, Numeric, Text, false, text
from sqlmodel import Field, SQLModel


class Profile(SQLModel, table=True):
    __tablename__ = "profiles"

    id: str = Field(primary_key=True, max_length=32)
    founder: str = Field(description="the identifier set the profile grew from")
    sort_key: str = Field(description="canonical age: the founder's sort key; the oldest wins a merge")
    created_at: datetime
    updated_at: datetime
    merged_into: str | None = Field(default=None, index=True)
    traits: Any = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False, server_default="{}"),
        description="name -> value (cdp_profiles/store/traits.py)",
    )
    trait_sources: Any = Field(
        default_factory=dict,
        sa_column=Column(JSON, nullable=False, server_default="{}"),
        description='the record that decided each trait: {"r": [sort key, ...], "n": {name: index into r}}',
    )
    settled: bool = Field(
        default=False,
        sa_column=Column(Boolean, nullable=False, server_default=false()),
        description="resolved alone (no limit conflict in its component), so new records may extend it in place",
    )


class IdSet(SQLModel, table=True):
    __tablename__ = "id_sets"

    id: str = Field(primary_key=True, max_length=40)
    identifiers: Any = Field(sa_column=Column(JSON, nullable=False))
    sort_key: str
    profile_id: str | None = Field(default=None, index=True)


class IdSetMember(SQLModel, table=True):
    __tablename__ = "id_set_members"

    type: str = Field(primary_key=True)
    value: str = Field(primary_key=True)
    set_id: str = Field(primary_key=True)


class RecordIndex(SQLModel, table=True):
    __tablename__ = "record_index"
    __table_args__ = (
        Index("ix_record_index_set", "set_id"),
        # Partial: only fast-path activity records have one (most records: none, no index entry).
        Index(
            "ix_record_index_profile",
            "profile_id",
            sqlite_where=text("profile_id IS NOT NULL"),
            postgresql_where=text("profile_id IS NOT NULL"),
        ),
    )

    stream: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    kind: str
    set_id: str | None = Field(
        default=None, description="None: an anonymous record (no identifier), or one on the activity fast path"
    )
    profile_id: str | None = Field(
        default=None, description="an activity fast-path record's profile (its identifiers all that profile's)"
    )
    identifiers: Any = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="an activity fast-path record's identifiers, [[type, value], ...]: its set, once a replay needs it",
    )
    occurred_at: datetime | None = None
    updated_at: datetime
    run_id: str | None = None


class ProfileRecord(SQLModel, table=True):
    __tablename__ = "profile_records"

    stream: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    data: Any = Field(sa_column=Column(JSON, nullable=False))
    traits: Any = Field(
        default=None,
        sa_column=Column(JSON, nullable=True),
        description="the traits the record gives by its stream's trait mapping; NULL: every field of data",
    )
    occurred_at: datetime | None = None


class Event(SQLModel, table=True):
    __tablename__ = "events"

    stream: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    name: str
    properties: Any = Field(sa_column=Column(JSON, nullable=False))
    occurred_at: datetime | None = Field(default=None, index=True)


class Order(SQLModel, table=True):
    __tablename__ = "orders"

    stream: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    order_id: str
    amount: Decimal | None = Field(default=None, sa_column=Column(Numeric(18, 4)))
    currency: str | None = None
    status: str | None = None
    items: Any = Field(default=None, sa_column=Column(JSON))
    occurred_at: datetime | None = Field(default=None, index=True)


class NpsResponse(SQLModel, table=True):
    __tablename__ = "nps_responses"

    stream: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    score: int
    category: str = Field(description="promoter (9-10), passive (7-8) or detractor (0-6)")
    comment: str | None = Field(default=None, sa_column=Column(Text))
    survey: str | None = None
    channel: str | None = None
    answered_at: datetime | None = Field(default=None, index=True)


class Consent(SQLModel, table=True):
    __tablename__ = "consents"

    stream: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    purpose: str
    status: str = Field(description="granted, denied or revoked")
    source: str | None = None
    occurred_at: datetime | None = None


class Identity(SQLModel, table=True):
    """Which profile owns an identifier: unique per (type, value)."""

    __tablename__ = "identities"

    type: str = Field(primary_key=True)
    value: str = Field(primary_key=True)
    profile_id: str = Field(index=True)
    source: str | None = Field(default=None, description="the stream of the earliest record carrying it")
    first_seen: str | None = Field(default=None, description="sort key of that record")


class MergeLog(SQLModel, table=True):
    __tablename__ = "merge_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime
    run_id: str | None = None
    winner: str = Field(index=True)
    loser: str = Field(index=True)
    identifier_type: str | None = None
    identifier_value: str | None = None
    record: str | None = Field(default=None, description="stream|key of the record that linked them")
    reason: str = Field(sa_column=Column(Text, nullable=False))
    undone_at: datetime | None = None
