"""A stand-in for the segment engine's SQL side while it is written: a few fixed rules, one statement each.

Segments are ``("trait", NAME, VALUE)`` (the trait's text equals VALUE) or ``("orders", N, DAYS)``
(at least N orders in the last DAYS days); computed traits are ``("order_count",)`` (orders of the
person, 0 for none) or ``("upper", TRAIT)`` (a trait's text in capitals; none without it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from cdp_core.store.tables import table_of
from sqlalchemy import Select, and_, func, select

from cdp_profiles import segments as engine_api
from cdp_profiles.segments import Rules
from cdp_profiles.store import profile_models as m
from cdp_profiles.store.trait_docs import value_text

_profiles, _orders, _index, _sets = (table_of(t) for t in (m.Profile, m.Order, m.RecordIndex, m.IdSet))


def rules(computed: dict[str, tuple[Any, ...]] | None = None, segments: dict[str, tuple[Any, ...]] | None = None) -> Rules:
    return Rules(computed=dict(computed or {}), segments=dict(segments or {}))


def _live() -> Any:
    return _profiles.c.merged_into.is_(None)


def _orders_of(since: datetime | None) -> Any:
    stmt = (
        select(_sets.c.profile_id.label("pid"), func.count().label("n"))
        .select_from(_orders.join(_index, and_(_index.c.stream == _orders.c.stream, _index.c.key == _orders.c.key)))
        .join(_sets, _sets.c.id == _index.c.set_id)
    )
    if since is not None:
        stmt = stmt.where(_orders.c.occurred_at >= since)
    return stmt.group_by(_sets.c.profile_id).subquery()


def members_query(rules: Rules, segment: str, dialect_name: str, now: datetime) -> Select[Any]:
    spec = rules.segments[segment]
    assert isinstance(spec, tuple)
    if spec[0] == "trait":
        text = value_text(_profiles.c.traits, spec[1], dialect_name)
        return select(_profiles.c.id.label("profile_id")).where(_live(), text == spec[2])
    counts = _orders_of(now - timedelta(days=spec[2]))
    return select(counts.c.pid.label("profile_id")).where(counts.c.n >= spec[1])


def computed_values_query(
    rules: Rules, names: Sequence[str] | None, dialect_name: str, now: datetime, profiles: Select[Any] | None = None
) -> Select[Any]:
    parts = []
    for name in names if names is not None else sorted(rules.computed):
        spec = rules.computed[name]
        assert isinstance(spec, tuple)
        if spec[0] == "order_count":
            counts = _orders_of(None)
            value: Any = sa.cast(func.coalesce(counts.c.n, 0), sa.Text)
            stmt = select(_profiles.c.id.label("profile_id"), sa.literal(name).label("name"), value.label("value"))
            stmt = stmt.select_from(_profiles.outerjoin(counts, counts.c.pid == _profiles.c.id))
        else:
            text = value_text(_profiles.c.traits, spec[1], dialect_name)
            value = sa.literal('"') + func.upper(text) + sa.literal('"')
            stmt = select(_profiles.c.id.label("profile_id"), sa.literal(name).label("name"), value.label("value"))
            stmt = stmt.where(text.is_not(None))
        stmt = stmt.where(_live())
        if profiles is not None:
            stmt = stmt.where(_profiles.c.id.in_(profiles))
        parts.append(stmt)
    return parts[0] if len(parts) == 1 else sa.union_all(*parts).subquery().select()  # type: ignore[return-value]


def decode_value(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The engine's SQL functions replaced by the stand-ins above."""
    monkeypatch.setattr(engine_api, "members_query", members_query)
    monkeypatch.setattr(engine_api, "computed_values_query", computed_values_query)
    monkeypatch.setattr(engine_api, "decode_value", decode_value)
    yield
