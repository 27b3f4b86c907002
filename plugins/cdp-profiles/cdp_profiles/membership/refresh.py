"""Bringing computed traits and segment membership up to date: set-based, on SQLite and PostgreSQL.

Every step is one statement over the engine's queries (``INSERT ... SELECT``, ``UPDATE`` and
``DELETE ... WHERE NOT EXISTS``), never one per profile:

- **computed traits**: the rows of the profiles concerned are deleted and inserted again from
  :func:`~cdp_profiles.segments.computed_values_query`; for the profiles a run touched (whose
  records it wrote, ``record_index.run_id``) or for everyone. Rows of profiles that are
  no longer live (merged away) and of traits no longer configured go.
- **membership**, per segment: the members at ``now``
  (:func:`~cdp_profiles.segments.members_query`) are staged once in a temporary table; who is in
  it and not in ``segment_members`` entered (a ``segment_history`` row opens), who is in
  ``segment_members`` and not in it left (the open history row gets ``left_at``). The segment's
  ``segment_refreshes`` row says when and how many.

A refresh is one transaction, holding the profile store's write lock (``WRITE_LOCK``: SQLite's own,
an advisory lock on PostgreSQL), so two refreshes (a sync's and ``cdp segments refresh``) never
interleave, nor a refresh and a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from cdp_core.store.sql import upsert_statement
from cdp_core.store.transaction import write_transaction
from cdp_core.timeutil import as_utc
from sqlalchemy import JSON, Column, Connection, DateTime, Engine, MetaData, Select, String, Table, select

from cdp_profiles import segments as engine_api
from cdp_profiles.analytics.config import trait_kinds
from cdp_profiles.analytics.traits import Written, refresh_analytics
from cdp_profiles.membership.engine import computed_names, segment_names
from cdp_profiles.segments import Rules
from cdp_profiles.segments.clock import evaluation_time
from cdp_profiles.store import tables
from cdp_profiles.store.owners import owned
from cdp_profiles.store.schema import WRITE_LOCK

_profiles = tables.profiles
_index = tables.record_index
_computed = tables.computed_traits
_members = tables.segment_members
_history = tables.segment_history
_refreshes = tables.segment_refreshes


@dataclass
class SegmentChange:
    segment: str
    members: int
    entered: int
    left: int


@dataclass
class RefreshResult:
    at: datetime
    computed_scope: str
    """``all`` (every live profile), ``touched`` (a run's profiles) or ``none`` (no computed trait configured)."""
    computed_rows: int = 0
    segments: list[SegmentChange] = field(default_factory=list)
    analytics: Written | None = None
    """RFM and lifetime-value traits, written at a full refresh when ``[analytics]`` asks for them."""

    def to_dict(self) -> dict[str, Any]:
        out = {
            "at": self.at.isoformat(),
            "computed_traits": {"scope": self.computed_scope, "rows": self.computed_rows},
            "segments": [vars(c) for c in self.segments],
        }
        if self.analytics is not None:
            out["analytics"] = self.analytics.to_dict()
        return out


def touched_by(run_id: str) -> Select[Any]:
    """The live profiles whose records run ``run_id`` wrote (through their identifier sets or the fast path)."""
    joined, owner = owned()
    return select(owner).select_from(joined).where(_index.c.run_id == run_id, owner.is_not(None)).distinct()


def refresh(
    engine: Engine,
    rules: Rules,
    *,
    now: datetime | None = None,
    run_id: str | None = None,
    segments: Sequence[str] | None = None,
    computed: bool = True,
) -> RefreshResult:
    """Computed traits (for the profiles run ``run_id`` touched, or everyone), then every segment's membership.

    :param segments: only these segments (default: every configured one; members of segments no
        longer configured then leave).
    :param computed: False: membership only, computed traits are left as they are.
    """
    now = as_utc(now) if now is not None else evaluation_time()
    names = computed_names(rules) if computed else []
    result = RefreshResult(at=now, computed_scope="none" if not names else "touched" if run_id else "all")
    with write_transaction(engine, spill=True, lock=WRITE_LOCK) as conn:
        if computed and run_id is None and trait_kinds(rules.analytics):
            assert rules.analytics is not None
            result.analytics = refresh_analytics(conn, rules.analytics, now)
        if computed:
            result.computed_rows = refresh_computed(conn, rules, now, touched_by(run_id) if run_id else None)
        chosen = segment_names(rules) if segments is None else list(segments)
        staging = _staging_table(conn)
        for name in chosen:
            result.segments.append(_refresh_segment(conn, staging, rules, name, now))
        if segments is None:
            _retire_unconfigured(conn, set(chosen), now)
        if conn.dialect.name == "sqlite":
            staging.drop(conn)
    return result


def refresh_computed(conn: Connection, rules: Rules, now: datetime, profiles: Select[Any] | None) -> int:
    """Computed trait rows of ``profiles`` (None: every live profile) recomputed; returns the rows written."""
    names = computed_names(rules)
    kept = [*names, *trait_kinds(rules.analytics)]  # the analytics' traits: written by refresh_analytics
    live = select(_profiles.c.id).where(_profiles.c.id == _computed.c.profile_id, _profiles.c.merged_into.is_(None))
    conn.execute(_computed.delete().where(sa.or_(~sa.exists(live), _computed.c.name.not_in(kept))))
    if not names:
        return 0
    if profiles is None:
        conn.execute(_computed.delete().where(_computed.c.name.in_(names)))
    else:
        concerned = profiles.subquery("concerned")
        conn.execute(_computed.delete().where(_computed.c.profile_id.in_(select(concerned.c[0])), _computed.c.name.in_(names)))
    # One INSERT ... SELECT per trait: a statement keeps every subquery it materialized until
    # it ends, so one statement for all traits holds all of them at once.
    for name in names:
        values = engine_api.computed_values_query(rules, [name], conn.dialect.name, now, profiles).subquery("computed")
        value = values.c.value if conn.dialect.name == "sqlite" else sa.cast(values.c.value, JSON)
        rows = select(values.c.profile_id, values.c.name, value, sa.literal(now, DateTime(timezone=True)))
        conn.execute(_computed.insert().from_select(["profile_id", "name", "value", "computed_at"], rows))
    return _count(conn, select(_computed.c.profile_id).where(_computed.c.computed_at == now))


def _staging_table(conn: Connection) -> Table:
    """A temporary table for one segment's members at a time (dropped at commit on PostgreSQL)."""
    table = Table(
        "cdp_segment_now",
        MetaData(),
        Column("profile_id", String(32), primary_key=True),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    table.create(conn, checkfirst=conn.dialect.name == "sqlite")
    return table


def _refresh_segment(conn: Connection, staging: Table, rules: Rules, segment: str, now: datetime) -> SegmentChange:
    conn.execute(staging.delete())
    members = engine_api.members_query(rules, segment, conn.dialect.name, now).subquery("members")
    conn.execute(staging.insert().from_select(["profile_id"], select(members.c[0]).distinct()))
    stamp = sa.literal(now, DateTime(timezone=True))
    known = select(_members.c.profile_id).where(
        _members.c.segment == segment, _members.c.profile_id == staging.c.profile_id
    )
    newcomers = select(sa.literal(segment), staging.c.profile_id, stamp).where(~sa.exists(known))
    columns = ["segment", "profile_id", "entered_at"]
    entered = _count(conn, newcomers)
    conn.execute(_history.insert().from_select(columns, newcomers))
    conn.execute(_members.insert().from_select(columns, newcomers))
    left = _leave(conn, segment, ~sa.exists(select(staging.c.profile_id).where(staging.c.profile_id == _members.c.profile_id)),
                  ~sa.exists(select(staging.c.profile_id).where(staging.c.profile_id == _history.c.profile_id)), now)  # fmt: skip
    count = conn.execute(select(sa.func.count()).select_from(staging)).scalar_one()
    row = {"segment": segment, "refreshed_at": now, "members": count, "entered": entered, "left": left}
    conn.execute(upsert_statement(conn.dialect.name, _refreshes, ["segment"], ["refreshed_at", "members", "entered", "left"]), row)
    return SegmentChange(segment, count, entered, left)


def _leave(conn: Connection, segment: str, gone: Any, gone_in_history: Any, now: datetime) -> int:
    """Members of ``segment`` for whom ``gone`` holds leave it at ``now``; returns how many."""
    stay = _history.c.segment == segment, _history.c.left_at.is_(None), gone_in_history
    leaving = _count(conn, select(_members.c.profile_id).where(_members.c.segment == segment, gone))
    conn.execute(_history.update().where(*stay).values(left_at=now))
    conn.execute(_members.delete().where(_members.c.segment == segment, gone))
    return leaving


def _count(conn: Connection, stmt: Select[Any]) -> int:
    """Rows ``stmt`` gives (``rowcount`` of an ``INSERT ... SELECT`` is not reliable on every driver)."""
    return int(conn.execute(select(sa.func.count()).select_from(stmt.subquery())).scalar_one())


def _retire_unconfigured(conn: Connection, configured: set[str], now: datetime) -> None:
    """Segments no longer in the config: their members leave (the history keeps who was in, and until when)."""
    stale = conn.execute(select(_members.c.segment).where(_members.c.segment.not_in(configured)).distinct()).scalars()
    for segment in list(stale):
        _leave(conn, segment, sa.true(), sa.true(), now)
    conn.execute(_refreshes.delete().where(_refreshes.c.segment.not_in(configured)))
