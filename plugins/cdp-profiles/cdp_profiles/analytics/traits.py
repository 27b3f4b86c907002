"""RFM scores and lifetime-value predictions stored as computed traits, at each full segment refresh.

With ``[analytics.rfm]`` configured: ``rfm_recency``, ``rfm_frequency``, ``rfm_monetary`` (scores),
``rfm_score`` (``"545"``) and ``rfm_group`` (``"champions"``); with ``[analytics.clv]``:
``clv_expected_purchases_<N>d``, ``clv_p_alive`` and ``clv_value_<N>d`` (N: ``horizon_days``).
They live in ``computed_traits`` (source ``computed``, like every computed trait), so they show in
``cdp profiles show``, travel on the profile store's streams and are names of the rule language.

RFM ranks everyone against everyone and the models are fitted on everyone, so these traits are
recomputed for every live profile at once: by a full refresh (``cdp segments refresh``, the daily
``segments-refresh`` job), in its transaction, before the computed traits and segments that may
read them. A sync's refresh leaves them as they are. The write is one ``DELETE`` and one bulk
``INSERT`` (``COPY`` on PostgreSQL) of all the rows, never a statement per person.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cdp_core.timeutil import as_utc
from sqlalchemy import Connection

from cdp_profiles.analytics.config import AnalyticsConfig, trait_kinds
from cdp_profiles.analytics.orders import histories, purchase_days
from cdp_profiles.analytics.rfm import rfm
from cdp_profiles.store import tables
from cdp_profiles.store.bulk import Bulk

log = logging.getLogger(__name__)
_computed = tables.computed_traits
DECIMALS = 6


@dataclass
class Written:
    rows: int = 0
    people: dict[str, int] = field(default_factory=dict)
    """rfm / clv -> how many people got values."""
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "people": self.people, "problems": self.problems}


def refresh_analytics(conn: Connection, config: AnalyticsConfig, now: datetime) -> Written:
    """Every live profile's RFM and lifetime-value traits recomputed (inside the refresh's transaction)."""
    names = trait_kinds(config)
    written = Written()
    if not names:
        return written
    conn.execute(_computed.delete().where(_computed.c.name.in_(list(names))))
    rows: list[tuple[str, str, Any]] = []
    if config.rfm is not None:
        people, _, _ = histories(conn, config)
        bins = config.rfm.bins
        for p in rfm(people, now, bins):
            rows += [(p.profile_id, "rfm_recency", p.r), (p.profile_id, "rfm_frequency", p.f),
                     (p.profile_id, "rfm_group", p.group(bins))]  # fmt: skip
            if p.m is not None:
                rows += [(p.profile_id, "rfm_monetary", p.m), (p.profile_id, "rfm_score", p.score)]
        written.people["rfm"] = len(people)
    if config.clv is not None:
        rows += _clv_rows(conn, config, now, written)
    bulk = Bulk(conn)
    stamp = bulk.time(now)
    bulk.insert(_computed.name, ["profile_id", "name", "value", "computed_at"],
                [(pid, name, bulk.json(value), stamp) for pid, name, value in rows])  # fmt: skip
    written.rows = len(rows)
    return written


def _clv_rows(conn: Connection, config: AnalyticsConfig, now: datetime, written: Written) -> list[tuple[str, str, Any]]:
    from cdp_profiles.analytics import lifetime  # numpy and scipy: only when lifetime value is configured

    assert config.clv is not None
    horizon = config.clv.horizon_days
    purchases, _, _ = purchase_days(conn, config)
    summary = lifetime.summarize(purchases, as_utc(now).date(), as_utc(now).date())
    try:
        fits = lifetime.fit(summary)
    except ValueError as exc:
        written.problems.append(f"lifetime value not fitted: {exc}")
        log.warning("analytics: lifetime value not fitted: %s", exc)
        return []
    if fits.gg_error:
        written.problems.append(f"no expected value: {fits.gg_error}")
    predicted = lifetime.predict(summary, fits, horizon, config.clv.annual_discount_rate)
    rows: list[tuple[str, str, Any]] = []
    columns = ((f"clv_expected_purchases_{horizon}d", predicted.expected_purchases), ("clv_p_alive", predicted.p_alive),
               (f"clv_value_{horizon}d", predicted.value))  # fmt: skip
    for name, values in columns:
        for pid, value in zip(summary.profile_ids, values.tolist(), strict=True):
            if math.isfinite(value):
                rows.append((pid, name, round(value, DECIMALS)))
    written.people["clv"] = summary.n
    return rows
