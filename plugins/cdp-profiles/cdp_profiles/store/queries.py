"""Read side of the profile store: find a profile by any identifier, its 360° view, and lists.

A profile's records are found through their identifier sets and on the activity fast path
(cdp_profiles/store/owners.py, ``records_of``): each section of the view is one query, however
many records it covers.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
from cdp_core.timeutil import as_utc
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import Connection, Engine, Table, case, func, or_, select

from cdp_profiles.consent import ConsentConfig, allowed, latest_consents
from cdp_profiles.identifiers import IdentifierNormalizer
from cdp_profiles.identity import IdentityConfig
from cdp_profiles.store import sortkey, tables
from cdp_profiles.store.owners import owned
from cdp_profiles.store.trait_docs import trait_entries, trait_values, value_text

_profiles, _identities, _merges, _index = tables.profiles, tables.identities, tables.merge_log, tables.record_index
_events, _orders, _nps, _consents = tables.events, tables.orders, tables.nps_responses, tables.consents

RECENT_EVENTS = 20
RECENT_ORDERS = 20
NOT_REVENUE = ("cancelled", "canceled", "refunded", "voided")  # left out of totals, still counted and listed
NAME_TRAITS = (("first_name", "last_name"), ("firstname", "lastname"), ("given_name", "family_name"))
FULL_NAME_TRAITS = ("name", "full_name", "fullname")
TYPE_NAME = re.compile(r"[a-z][a-z0-9_]*")
_PROFILE_ID = re.compile(r"[0-9a-f]{32}")
PHONE_LIKE = re.compile(r"\+?[\d\s()./-]{6,24}")
_MAX_HOPS = 16
_TYPE_ORDER = {"email": 0, "phone": 1}
_NEVER = datetime.max.replace(tzinfo=UTC)


class ProfileNotFound(LookupError):
    """No profile has that id."""


def _to_utc(value: datetime | None) -> datetime | None:
    """Times are stored in UTC; SQLite (and PostgreSQL's ``timestamp``) give them back naive."""
    return None if value is None else as_utc(value)


def money(value: Decimal) -> Decimal:
    """Without the store's trailing zeros, but with at least two decimals: 19.9900 -> 19.99, 100 -> 100.00."""
    plain = value.normalize()
    exponent = plain.as_tuple().exponent
    return value.quantize(Decimal("0.01")) if isinstance(exponent, int) and exponent > -2 else plain


When = Annotated[datetime | None, AfterValidator(_to_utc)]
Money = Annotated[Decimal | None, AfterValidator(lambda v: None if v is None else money(v))]


class ProfileInfo(BaseModel):
    id: str
    created_at: When
    updated_at: When
    merged_ids: list[str] = Field(default_factory=list, description="profiles merged into this one")


class TraitView(BaseModel):
    name: str
    value: Any
    source: str | None
    set_at: When


class IdentityView(BaseModel):
    type: str
    value: str
    source: str | None = Field(description="the stream of the earliest record carrying it")
    first_seen: When
    record: str | None = Field(description="STREAM|KEY of that record")


class MergeView(BaseModel):
    at: When
    winner: str
    loser: str
    identifier_type: str | None
    identifier_value: str | None
    record: str | None = Field(description="STREAM|KEY of the record that linked them")
    reason: str
    run_id: str | None
    undone_at: When


class _Stored(BaseModel):
    stream: str
    key: str


class EventView(_Stored):
    name: str
    properties: Any
    occurred_at: When


class OrderView(_Stored):
    order_id: str
    amount: Money
    currency: str | None
    status: str | None
    items: Any
    occurred_at: When


class OrdersView(BaseModel):
    count: int = 0
    totals: dict[str, Decimal] = Field(default_factory=dict, description=f"per currency, without {NOT_REVENUE}")
    first_order_at: When = None
    last_order_at: When = None
    recent: list[OrderView] = Field(default_factory=list, description=f"the last {RECENT_ORDERS}, newest first")


class NpsView(_Stored):
    score: int
    category: str
    comment: str | None
    survey: str | None
    channel: str | None
    answered_at: When


class ConsentView(_Stored):
    purpose: str
    status: str
    source: str | None
    occurred_at: When


class PurposeView(BaseModel):
    """The decision in force for one purpose, and whether it lets the person be sent under the purpose's policy."""

    purpose: str
    policy: str | None = Field(description="opt_in or opt_out; None: a purpose [consent] does not define")
    status: str | None = Field(description="granted, denied or revoked; None: no decision")
    source: str | None = None
    stream: str | None = None
    key: str | None = None
    occurred_at: When = None
    allowed: bool | None = Field(description="may exports serving this purpose send the person; None: not a purpose")


class ConsentsView(BaseModel):
    latest: list[ConsentView] = Field(default_factory=list, description="the decision in force per purpose")
    history: list[ConsentView] = Field(default_factory=list, description="every change, newest first")
    purposes: list[PurposeView] = Field(
        default_factory=list, description="every configured purpose (and any other decided): the decision in force"
    )


class SourceRecordView(_Stored):
    kind: str
    occurred_at: When


class SegmentView(BaseModel):
    segment: str
    entered_at: When


class ProfileView(BaseModel):
    profile: ProfileInfo
    traits: list[TraitView]
    identities: list[IdentityView]
    merges: list[MergeView] = Field(description="merges into this profile (or into one merged into it), oldest first")
    event_count: int
    events: list[EventView] = Field(description=f"the last {RECENT_EVENTS}, newest first")
    orders: OrdersView
    nps: list[NpsView] = Field(description="every answer, newest first")
    consents: ConsentsView
    records: list[SourceRecordView] = Field(description="the stored records that make up the profile")
    segments: list[SegmentView] = Field(default_factory=list, description="the segments it is in, by name")


M = TypeVar("M", bound=BaseModel)


def _rows(conn: Connection, model: type[M], stmt: Any) -> list[M]:
    return [model.model_validate(dict(r._mapping)) for r in conn.execute(stmt)]


def profile_view(engine: Engine, profile_id: str, consent: ConsentConfig | None = None) -> ProfileView:
    """Everything known about one person; a merged-away id shows the profile it was merged into.

    ``consent`` (``[consent]``, its defaults when None) gives the purposes and policies the
    consents are read against."""
    with engine.connect() as conn:
        pid = _follow(conn, profile_id)
        if pid is None:
            raise ProfileNotFound(profile_id)
        row = conn.execute(select(_profiles).where(_profiles.c.id == pid)).one()
        merged = merged_ids(conn, pid)
        info = ProfileInfo(id=pid, created_at=row.created_at, updated_at=row.updated_at, merged_ids=merged)
        traits = [TraitView.model_validate(t) for t in trait_entries(row.traits, row.trait_sources)]  # by name
        traits, segments = _derived(conn, pid, traits)
        identities = [
            IdentityView(type=r.type, value=r.value, source=r.source, **_origin(r.first_seen))
            for r in conn.execute(select(_identities).where(_identities.c.profile_id == pid))
        ]
        identities.sort(key=lambda i: (_TYPE_ORDER.get(i.type, 2), i.type, i.first_seen or _NEVER, i.value))
        ids = [pid, *merged]
        touching = or_(_merges.c.winner.in_(ids), _merges.c.loser.in_(ids))
        merges = _rows(conn, MergeView, select(_merges).where(touching).order_by(_merges.c.at, _merges.c.id))
        columns = select(_index.c.stream, _index.c.key, _index.c.kind, _index.c.occurred_at).select_from(_of(pid))
        order = (_index.c.occurred_at.asc().nulls_last(), _index.c.stream, _index.c.key)
        records = _rows(conn, SourceRecordView, columns.order_by(*order))
        event_count = conn.execute(select(func.count()).select_from(_of(pid, _events))).scalar_one()
        events = _rows(conn, EventView, _newest(pid, _events, _events.c.occurred_at).limit(RECENT_EVENTS))
        orders = _orders_view(conn, pid)
        nps = _rows(conn, NpsView, _newest(pid, _nps, _nps.c.answered_at))
        history = _rows(conn, ConsentView, _newest(pid, _consents, _consents.c.occurred_at))
        # The decision in force: the same query the export gates read (cdp_profiles/consent.py).
        latest = _rows(conn, ConsentView, latest_consents(profiles=[pid]).order_by("purpose"))
    consents = ConsentsView(latest=latest, history=history, purposes=purpose_views(latest, consent or ConsentConfig()))
    return ProfileView(
        profile=info, traits=traits, identities=identities, merges=merges, event_count=event_count, events=events,
        orders=orders, nps=nps, consents=consents, records=records, segments=segments,
    )  # fmt: skip


def _derived(conn: Connection, pid: str, traits: list[TraitView]) -> tuple[list[TraitView], list[SegmentView]]:
    """The profile's traits with its computed ones (source ``computed``; one wins over a record trait of its
    name), and the segments it is in (as of their last refresh)."""
    from cdp_profiles.membership.reads import COMPUTED_SOURCE, computed_values, segments_of

    computed = computed_values(conn, [pid]).get(pid, {})
    merged = [t for t in traits if t.name not in computed]
    merged += [TraitView(name=n, value=v, source=COMPUTED_SOURCE, set_at=at) for n, (v, at) in computed.items()]
    segments = [SegmentView(segment=m.segment, entered_at=m.entered_at) for m in segments_of(conn, pid)]
    return sorted(merged, key=lambda t: t.name), segments


def purpose_views(latest: list[ConsentView], consent: ConsentConfig) -> list[PurposeView]:
    """Per purpose (the configured ones, then any other the person decided on): the decision and what it allows."""
    decided = {c.purpose: c for c in latest}
    purposes = consent.all_purposes()
    views = []
    for name in [*purposes, *sorted(set(decided) - set(purposes))]:
        c = decided.get(name)
        policy = purposes[name].policy if name in purposes else None
        views.append(
            PurposeView(
                purpose=name,
                policy=None if policy is None else str(policy),
                status=c.status if c else None,
                source=c.source if c else None,
                stream=c.stream if c else None,
                key=c.key if c else None,
                occurred_at=c.occurred_at if c else None,
                allowed=None if policy is None else allowed(c.status if c else None, policy),
            )
        )
    return views


def _orders_view(conn: Connection, pid: str) -> OrdersView:
    view = OrdersView()
    revenue = case((func.lower(func.coalesce(_orders.c.status, "")).in_(NOT_REVENUE), None), else_=_orders.c.amount)
    when = _orders.c.occurred_at
    totals = (func.count().label("n"), func.sum(revenue).label("total"))
    stmt = select(_orders.c.currency, *totals, func.min(when).label("first"), func.max(when).label("last"))
    stmt = stmt.select_from(_of(pid, _orders))
    moments: list[datetime] = []
    for r in conn.execute(stmt.group_by(_orders.c.currency)):
        view.count += r.n
        if r.total is not None:
            view.totals[r.currency or "?"] = money(Decimal(str(r.total)))
        moments += [t for t in (_to_utc(r.first), _to_utc(r.last)) if t is not None]
    view.totals = dict(sorted(view.totals.items()))
    view.first_order_at, view.last_order_at = (min(moments), max(moments)) if moments else (None, None)
    view.recent = _rows(conn, OrderView, _newest(pid, _orders, _orders.c.occurred_at).limit(RECENT_ORDERS))
    return view


def _of(pid: str, table: Table | None = None) -> Any:
    """``record_index`` (joined to ``table``, if given) restricted to the records of one profile."""
    return owned(table, [pid])[0]


def _newest(pid: str, table: Table, column: Any) -> Any:
    """The profile's rows of a kind table, newest first (rows without a time last), then by stream and key."""
    stmt = select(table).select_from(_of(pid, table))
    return stmt.order_by(column.desc().nulls_last(), table.c.stream, table.c.key)


def _follow(conn: Connection, profile_id: str) -> str | None:
    """The live profile ``profile_id`` is (or was merged into), or None if there is no such profile."""
    current: str | None = profile_id
    for _ in range(_MAX_HOPS):  # the writer keeps merges one hop deep; this survives older data too
        row = conn.execute(select(_profiles.c.merged_into).where(_profiles.c.id == current)).first()
        if row is None or row.merged_into is None:
            return current if row else None
        current = row.merged_into
    return current


def merged_ids(conn: Connection, pid: str) -> list[str]:
    """Every profile merged into ``pid``, directly or through a chain of merges."""
    chain = select(_profiles.c.id).where(_profiles.c.merged_into == pid).cte("chain", recursive=True)
    chain = chain.union(select(_profiles.c.id).where(_profiles.c.merged_into == chain.c.id))
    return sorted(conn.execute(select(chain.c.id)).scalars())


def _origin(first_seen: str | None) -> dict[str, Any]:
    """An identity's ``first_seen`` sort key as its time (UTC, naive as stored times are read) and record."""
    if not first_seen:
        return {"first_seen": None, "record": None}
    when = sortkey.decode(first_seen).when
    return {"first_seen": when.replace(tzinfo=None) if when else None, "record": sortkey.record_of(first_seen) or None}


# -- finding a profile ----------------------------------------------------------------


@dataclass
class Lookup:  # how an identifier was resolved
    query: str
    profile_id: str | None = None  # the live profile
    matched: str | None = None  # the TYPE:VALUE (normalized) or profile:ID that matched
    merged_from: str | None = None  # the profile the identifier named, when it was merged into profile_id
    problem: str | None = None  # why nothing matched, when there is more to say than "unknown"


def find_profile(engine: Engine, identifier: str, identity_config: IdentityConfig) -> str | None:
    """The live profile for ``TYPE:VALUE``, ``profile:ID``, a profile id, or a bare email or phone."""
    return lookup_profile(engine, identifier, identity_config).profile_id


def lookup_profile(engine: Engine, identifier: str, identity_config: IdentityConfig) -> Lookup:
    """Like :func:`find_profile`, and says what matched and why nothing did."""
    normalize = IdentifierNormalizer(identity_config)  # the store's own normalization, blocked values included
    text, found = identifier.strip(), Lookup(query=identifier)
    head, sep, rest = text.partition(":")
    typed = bool(sep) and TYPE_NAME.fullmatch(head) is not None
    with engine.connect() as conn:
        hits: list[tuple[str, str]] = []  # (profile the identifier names, what matched)
        if typed and head == "profile" or not typed and _PROFILE_ID.fullmatch(text.lower()):
            named = (rest if typed else text).strip().lower()
            if conn.execute(select(_profiles.c.id).where(_profiles.c.id == named)).first():
                hits = [(named, f"profile:{named}")]
        if not hits and not (typed and head == "profile"):  # TYPE:VALUE, a bare email or phone, or any exact value
            type_name = head if typed else "email" if "@" in text else "phone" if PHONE_LIKE.fullmatch(text) else ""
            value, why = normalize(type_name, rest if typed else text) if type_name else (None, "")
            found.problem = why or None
            wanted = [sa.tuple_(_identities.c.type, _identities.c.value) == (type_name, value)] if value else []
            wanted += [] if typed or not text else [_identities.c.value == text]
            rows = conn.execute(select(_identities).where(or_(*wanted)).order_by(_identities.c.type)).all() if wanted else []
            hits = [(r.profile_id, f"{r.type}:{r.value}") for r in rows]
        owners: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for pid, what in hits:
            if (live := _follow(conn, pid)) is not None:
                owners[live].append((pid, what))
    if len(owners) == 1:
        live, matches = next(iter(owners.items()))
        named, found.matched = matches[0]
        found.profile_id, found.problem, found.merged_from = live, None, named if named != live else None
    elif owners:
        found.problem = "ambiguous: " + "; ".join(
            f"{', '.join(w for _, w in what)} -> profile {pid}" for pid, what in sorted(owners.items())
        )
    elif not text or typed and head == "profile":
        found.problem = "no profile has that id" if text else "an empty identifier"
    return found


class ProfileSummary(BaseModel):
    id: str
    name: str | None
    email: str | None
    phone: str | None
    orders: int
    nps_score: int | None
    nps_category: str | None
    updated_at: datetime


def list_profiles(
    engine: Engine,
    where: dict[str, str] | None = None,
    has: str | None = None,
    limit: int = 50,
    offset: int = 0,
    within: Any = None,
) -> list[ProfileSummary]:
    """Live profiles, most recently updated first.

    :param where: trait name -> value; every one must match (case-insensitive, on the value as text).
    :param has: only profiles with an identifier of this type.
    :param within: a ``SELECT profile_id`` (a segment's members, a rule's matches): only those profiles.
    """
    stmt = select(_profiles.c.id, _profiles.c.updated_at).where(_profiles.c.merged_into.is_(None))
    if within is not None:
        stmt = stmt.where(_profiles.c.id.in_(within))
    with engine.connect() as conn:
        for name, value in (where or {}).items():
            text = func.lower(value_text(_profiles.c.traits, name, conn.dialect.name))
            stmt = stmt.where(text == func.lower(value))  # SQLite's lower() folds ASCII only
        if has:
            stmt = stmt.where(sa.exists().where(_identities.c.profile_id == _profiles.c.id, _identities.c.type == has))
        stmt = stmt.order_by(_profiles.c.updated_at.desc(), _profiles.c.id).limit(limit).offset(offset)
        page = conn.execute(stmt).all()
        ids = [r.id for r in page]
        traits: dict[str, dict[str, Any]] = defaultdict(dict)
        for r in conn.execute(select(_profiles.c.id, _profiles.c.traits).where(_profiles.c.id.in_(ids))):
            traits[r.id] = trait_values(r.traits)
        contacts: dict[str, dict[str, str]] = defaultdict(dict)
        wanted = (_identities.c.profile_id.in_(ids), _identities.c.type.in_(("email", "phone")))
        order = (_identities.c.first_seen.desc(), _identities.c.value.desc())  # the earliest seen comes last and stays
        for r in conn.execute(select(_identities).where(*wanted).order_by(*order)):
            contacts[r.profile_id][r.type] = r.value
        joined, owner = owned(_orders, ids)
        counts = select(owner, func.count().label("n")).select_from(joined).group_by(owner)
        orders: dict[str, int] = {pid: n for pid, n in conn.execute(counts)}
    return [
        ProfileSummary(
            id=r.id,
            name=display_name(traits[r.id]),
            email=contacts[r.id].get("email"),
            phone=contacts[r.id].get("phone"),
            orders=orders.get(r.id, 0),
            nps_score=score if isinstance(score := traits[r.id].get("nps_score"), int) else None,
            nps_category=traits[r.id].get("nps_category"),
            updated_at=_to_utc(r.updated_at) or _NEVER,
        )
        for r in page
    ]


def display_name(traits: dict[str, Any]) -> str | None:
    """"First Last" from the usual name traits (CRM and shop vocabularies), else a full-name trait."""
    for first, last in NAME_TRAITS:
        parts = [str(traits[n]).strip() for n in (first, last) if traits.get(n) not in (None, "")]
        if parts:
            return " ".join(parts)
    return next((str(traits[n]) for n in FULL_NAME_TRAITS if traits.get(n) not in (None, "")), None)
