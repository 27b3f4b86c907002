"""NPS per configured segment: the answers of its members against everyone else's (docs/nps.md, "The report").

One aggregate query per segment (the segment's ``members_query`` as a filter, set-based);
"out" is the report's total minus "in", so the two always add up to the total, and answers of
people no profile stands behind count as out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from cdp_profiles.nps import Filters, NpsFigure, summary


@dataclass(frozen=True)
class SegmentSplit:
    segment: str
    inside: NpsFigure
    outside: NpsFigure

    @property
    def difference(self) -> float | None:
        a, b = self.inside.nps, self.outside.nps
        return None if a is None or b is None else a - b

    def to_dict(self) -> dict[str, Any]:
        return {"segment": self.segment, "in": self.inside.to_dict(), "out": self.outside.to_dict()}


def segment_splits(engine: Engine, rules: Any, filters: Filters, now: datetime, total: NpsFigure) -> list[SegmentSplit]:
    """In vs out for every segment of ``rules`` (a compiled :class:`~cdp_profiles.segments.Rules`), by name."""
    from cdp_profiles.segments import members_query

    out = []
    for name in sorted(rules.segments):
        members = members_query(rules, name, engine.dialect.name, now).subquery("segment_members")
        chosen: Any = select(members.c.profile_id)
        if filters.members is not None:  # a report of one segment: the intersection
            chosen = chosen.where(members.c.profile_id.in_(filters.members))
        inside = summary(engine, **dataclasses.replace(filters, members=chosen).kwargs())
        outside = NpsFigure(
            total.promoters - inside.promoters, total.passives - inside.passives, total.detractors - inside.detractors
        )
        out.append(SegmentSplit(name, inside, outside))
    return out
