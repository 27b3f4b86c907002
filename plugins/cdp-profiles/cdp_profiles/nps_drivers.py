"""STUB of the NPS drivers module (the real one computes every trait, computed trait, segment and behaviour).

Placeholder with the agreed interface only, so the report can show a drivers table until the
full module lands: it compares segment members with everyone else, nothing more.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine

from cdp_profiles.nps import Filters, NpsFigure, summary
from cdp_profiles.segments.clock import evaluation_time


@dataclass(frozen=True)
class Driver:
    factor: str
    kind: str
    group: str
    n_group: int
    nps_group: float
    n_rest: int
    nps_rest: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    significant: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _variance(f: NpsFigure) -> float:
    p, d = f.promoters / f.n, f.detractors / f.n
    return max(p + d - (p - d) ** 2, 1 / f.n) / f.n * 10_000


def drivers(engine: Engine, config: Any, filters: Filters) -> list[Driver]:
    """STUB: segment in vs out only, Wald interval of the difference, Holm's adjustment."""
    from cdp_profiles.membership.engine import rules_of
    from cdp_profiles.nps_segments import segment_splits

    total = summary(engine, **filters.kwargs())
    splits = segment_splits(engine, rules_of(config), filters, evaluation_time(), total)
    rows = []
    for s in splits:
        a, b = s.inside, s.outside
        if a.nps is None or b.nps is None:
            continue
        diff = a.nps - b.nps
        se = math.sqrt(_variance(a) + _variance(b))
        p = math.erfc(abs(diff) / se / math.sqrt(2))
        rows.append((f"segment {s.segment}", a, b, diff, se, p))
    ordered = sorted(rows, key=lambda r: r[5])
    adjusted: dict[str, float] = {}
    running = 0.0
    for i, r in enumerate(ordered):
        running = max(running, min(1.0, r[5] * (len(ordered) - i)))
        adjusted[r[0]] = running
    out = [
        Driver(factor, "segment", "in", a.n, a.nps or 0.0, b.n, b.nps or 0.0, diff, diff - 1.96 * se,
               diff + 1.96 * se, p, adjusted[factor], adjusted[factor] < 0.05)
        for factor, a, b, diff, se, p in rows
    ]  # fmt: skip
    return sorted(out, key=lambda d: -abs(d.difference))
