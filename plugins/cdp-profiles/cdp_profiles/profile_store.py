"""The profile store as a plugin: a destination (with identity resolution) and a source (for activation).

Configured as ``[connectors.store] type = "profile_store"``; it uses the
database of ``[store] url`` and the rules of ``[identity]``. As a source it also offers one
stream per ``[segments.NAME]``, ``segment_NAME`` (docs/segments.md#segment-streams).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

from cdp_core.base import ConnectorContext, Destination, Page, PluginConfig, Source, Stream, WriteMode
from cdp_core.records import JsonValue, Record, RecordKind
from cdp_core.store.checkpoint import Checkpoint
from cdp_core.store.engine import make_engine
from pydantic import Field
from sqlalchemy import Table, and_, or_, select

from cdp_profiles.identity import IdentityConfig
from cdp_profiles.membership.engine import configured, descriptions, rules_of
from cdp_profiles.membership.reads import computed_values
from cdp_profiles.membership.refresh import refresh
from cdp_profiles.store import tables
from cdp_profiles.store.owners import owned
from cdp_profiles.store.profiles import ProfileWriter
from cdp_profiles.store.schema import ensure_schema
from cdp_profiles.store.trait_docs import trait_values


class ProfileStoreConfig(PluginConfig):
    page_size: int = Field(default=5_000, ge=1, le=100_000, description="records per page when read as a source")


def identity_rules(context: ConnectorContext) -> IdentityConfig:
    """The ``[identity]`` section of the connector's config (its defaults where the section is absent)."""
    identity = context.sections.get("identity")
    return identity if isinstance(identity, IdentityConfig) else IdentityConfig()


class ProfileStoreDestination(Destination):
    """Stores records of every kind and resolves them into profiles, exactly once per (stream, key)."""

    config_model = ProfileStoreConfig
    write_mode = WriteMode.upsert
    commits_checkpoint = True
    accepts: ClassVar[frozenset[RecordKind] | None] = frozenset(RecordKind)
    handles_deletions: ClassVar[bool] = True
    """A tombstone removes the stored record and recomputes its person (docs/store.md, "Deleted records")."""

    def open(self) -> None:
        self._engine = make_engine(self.context.store_url)
        ensure_schema(self._engine)
        self._writer = ProfileWriter(self._engine, identity_rules(self.context))

    def write(self, batch: list[Record], checkpoint: Checkpoint) -> None:
        self._writer.write(batch, checkpoint)
        self._run_id: str | None = checkpoint.run_id

    def close(self) -> None:
        """After a run that wrote: computed traits of the profiles it touched, and every segment's membership.

        Also after a failed run: what it committed is in the store (docs/segments.md#refresh).
        """
        engine = getattr(self, "_engine", None)
        if engine is None:
            return
        try:
            run_id = getattr(self, "_run_id", None)
            if run_id is not None and configured(self.context.sections):
                refresh(engine, rules_of(self.context.sections), run_id=run_id)
        finally:
            engine.dispose()


# -- as a source ----------------------------------------------------------------------------

_profiles = tables.profiles
_identities = tables.identities
_index = tables.record_index
_segment_members = tables.segment_members


def _cursor_after(cursor: JsonValue) -> tuple[datetime, str, str] | None:
    if not isinstance(cursor, dict):
        return None
    return datetime.fromisoformat(cursor["updated_at"]), cursor.get("a", ""), cursor.get("b", "")


class _StoreStream(Stream):
    def __init__(self, source: ProfileStoreSource, name: str, kind: RecordKind) -> None:
        self.source = source
        self.name = name
        self.kind = kind
        self.cursor_field = "updated_at"
        self.primary_key = ("id",) if kind is RecordKind.profile else ("stream", "key")


class _ProfilesStream(_StoreStream):
    """Live (unmerged) profiles with their traits and identities.

    Incremental (``profiles``): by last change. Full refresh (``profiles_all``):
    every live profile on every run, in id order, for destinations that mirror
    their input (ad audiences); resumable mid-read, and the final cursor is None
    so the next run reads everyone again.
    """

    def __init__(self, source: ProfileStoreSource, name: str, full_refresh: bool = False) -> None:
        super().__init__(source, name, RecordKind.profile)
        self.full_refresh = full_refresh
        if full_refresh:
            self.cursor_field = None

    def read(self, cursor: JsonValue) -> Iterator[Page]:
        engine = self.source.engine()
        size = self.source.config.page_size  # type: ignore[attr-defined]
        after = _cursor_after(cursor) if not self.full_refresh else None
        after_id = cursor.get("after_id") if self.full_refresh and isinstance(cursor, dict) else None
        if self.full_refresh and after_id is None:
            self.starting_pass(engine)
        while True:
            stmt = self.base_query()
            if self.full_refresh:
                if after_id is not None:
                    stmt = stmt.where(_profiles.c.id > after_id)
                stmt = stmt.order_by(_profiles.c.id)
            else:
                if after is not None:
                    when, pid, _ = after
                    stmt = stmt.where(
                        or_(_profiles.c.updated_at > when, and_(_profiles.c.updated_at == when, _profiles.c.id > pid))
                    )
                stmt = stmt.order_by(_profiles.c.updated_at, _profiles.c.id)
            with engine.connect() as conn:
                rows = conn.execute(stmt.limit(size)).all()
                records = self._records(conn, rows)
            last_page = len(rows) < size
            if self.full_refresh:
                # The last page says cursor None: the next run starts from the first profile again.
                after_id = rows[-1].id if rows else after_id
                yield Page(records, None if last_page else {"after_id": after_id})
                if last_page:
                    return
                continue
            if not rows:
                return
            last = rows[-1]
            after = (last.updated_at, last.id, "")
            yield Page(records, {"updated_at": last.updated_at.isoformat(), "a": last.id, "b": ""})
            if last_page:
                return

    def base_query(self) -> Any:
        """The profiles this stream emits, before paging: every live one."""
        return select(_profiles.c.id, _profiles.c.updated_at).where(_profiles.c.merged_into.is_(None))

    def starting_pass(self, engine: Any) -> None:
        """Called when a full-refresh pass starts from the first profile (not when it resumes mid-read)."""

    def _records(self, conn: Any, rows: list[Any]) -> list[Record]:
        ids = [r.id for r in rows]
        traits: dict[str, dict[str, Any]] = defaultdict(dict)
        idents: dict[str, dict[str, str | list[str]]] = defaultdict(dict)
        if ids:
            for p in conn.execute(select(_profiles.c.id, _profiles.c.traits).where(_profiles.c.id.in_(ids))):
                traits[p.id] = trait_values(p.traits)
            for pid, values in computed_values(conn, ids).items():  # a computed trait wins over a record's field
                traits[pid].update({name: value for name, (value, _) in values.items()})
            order = _identities.c.type, _identities.c.first_seen, _identities.c.value
            for i in conn.execute(select(_identities).where(_identities.c.profile_id.in_(ids)).order_by(*order)):
                # One value of a type: its text; several: a list, the earliest (the primary) first.
                held = idents[i.profile_id]
                known = held.get(i.type)
                if known is None:
                    held[i.type] = i.value
                elif isinstance(known, str):
                    held[i.type] = [known, i.value]
                else:
                    known.append(i.value)
        return [
            Record(
                stream=f"{self.source.context.name}.{self.name}",
                kind=RecordKind.profile,
                key=r.id,
                data={"profile_id": r.id, **traits[r.id]},
                identifiers=idents[r.id],
            )
            for r in rows
        ]


SEGMENT_STREAM_PREFIX = "segment_"
"""A segment's stream is ``segment_NAME`` (``source = "store.segment_promoters"``)."""


class _SegmentStream(_ProfilesStream):
    """The current members of one segment, with their traits (computed ones included) and identifiers.

    Full refresh, like ``profiles_all``: every member on every run, so a mirror destination
    removes whoever left. A pass that starts from the beginning first refreshes the segment's
    membership (its history records who entered and left), so what it sends is who is in the
    segment at that moment.
    """

    def __init__(self, source: ProfileStoreSource, segment: str) -> None:
        super().__init__(source, f"{SEGMENT_STREAM_PREFIX}{segment}", full_refresh=True)
        self.segment = segment

    def base_query(self) -> Any:
        members = _segment_members
        return (
            select(_profiles.c.id, _profiles.c.updated_at)
            .join(members, and_(members.c.profile_id == _profiles.c.id, members.c.segment == self.segment))
            .where(_profiles.c.merged_into.is_(None))
        )

    def starting_pass(self, engine: Any) -> None:
        refresh(engine, rules_of(self.source.context.sections), segments=[self.segment], computed=False)


class _KindStream(_StoreStream):
    """Stored records of one kind, with the profile each belongs to now."""

    def read(self, cursor: JsonValue) -> Iterator[Page]:
        table: Table = _KIND_TABLE[self.kind]
        after = _cursor_after(cursor)
        engine = self.source.engine()
        size = self.source.config.page_size  # type: ignore[attr-defined]
        join, owner = owned(table)
        while True:
            stmt = select(table, _index.c.updated_at, owner.label("profile_id")).select_from(join)
            stmt = stmt.where(owner.is_not(None))  # an anonymous record is not read
            if after is not None:
                when, stream, key = after
                stmt = stmt.where(
                    or_(
                        _index.c.updated_at > when,
                        and_(_index.c.updated_at == when, _index.c.stream > stream),
                        and_(_index.c.updated_at == when, _index.c.stream == stream, _index.c.key > key),
                    )
                )
            stmt = stmt.order_by(_index.c.updated_at, _index.c.stream, _index.c.key).limit(size)
            with engine.connect() as conn:
                rows = conn.execute(stmt).all()
            if not rows:
                return
            records = []
            for row in rows:
                data = {k: v for k, v in row._mapping.items() if k not in ("updated_at",)}
                occurred = next((data[c] for c in ("occurred_at", "answered_at") if data.get(c)), None)
                records.append(
                    Record(
                        stream=f"{self.source.context.name}.{self.name}",
                        kind=self.kind,
                        key=f"{row.stream}|{row.key}",
                        data=_jsonable(data),
                        identifiers={"cdp_profile_id": row.profile_id} if row.profile_id else {},
                        occurred_at=occurred,
                    )
                )
            last = rows[-1]
            after = (last.updated_at, last.stream, last.key)
            yield Page(records, {"updated_at": last.updated_at.isoformat(), "a": last.stream, "b": last.key})
            if len(rows) < size:
                return


_KIND_TABLE: dict[RecordKind, Table] = {
    RecordKind.event: tables.events,
    RecordKind.order: tables.orders,
    RecordKind.nps_response: tables.nps_responses,
}


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    from decimal import Decimal

    return {
        k: (str(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()
    }


class ProfileStoreSource(Source):
    """Reads unified profiles, events, orders and NPS answers back out of the store."""

    config_model = ProfileStoreConfig

    def engine(self) -> Any:
        if not hasattr(self, "_engine"):
            self._engine = make_engine(self.context.store_url)
            ensure_schema(self._engine)
        return self._engine

    def streams(self) -> Sequence[Stream]:
        segments = descriptions(self.context.sections, "segments")
        return [
            _ProfilesStream(self, "profiles"),
            _ProfilesStream(self, "profiles_all", full_refresh=True),
            _KindStream(self, "events", RecordKind.event),
            _KindStream(self, "orders", RecordKind.order),
            _KindStream(self, "nps_responses", RecordKind.nps_response),
            *(_SegmentStream(self, name) for name in sorted(segments)),
        ]

    def close(self) -> None:
        if hasattr(self, "_engine"):
            self._engine.dispose()
