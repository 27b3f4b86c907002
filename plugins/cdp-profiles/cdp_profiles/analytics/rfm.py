"""RFM: recency, frequency and monetary scores by rank, and the named groups of the R x F grid (docs/analytics.md).

Over the people with at least one counted order (:func:`cdp_profiles.analytics.orders.histories`):

- **recency**: whole UTC days from the day of the last order to the day of ``now``; fewer is better;
- **frequency**: the number of counted orders;
- **monetary**: their total amount in the base currency (None when no order could be converted:
  that person has no monetary score and no ``rfm_score``).

Each is scored 1..``bins`` by rank: the people are ordered from worst to best (most days since the
last order first, fewest orders first, least money first); a person at position ``p`` (1-based) of
``n`` gets ``1 + floor((p - 1) * bins / n)``, and people with the same value all take the position
of the first of them (``rank()``'s "min" rule), so ties share a score, that of the lowest, and the
answer does not depend on any order of the rows. Recent = high: the most recent buyers score ``bins``.

Groups come from R and F alone, on the 5-point grid below (with other ``bins``, scores are brought
to 1..5 first: ``1 + floor((s - 1) * 5 / bins)``); the widely published R x F segment map, with its
lowest cell (R 1, F 1) named ``lost``:

=====  ======================================================
R F    group
=====  ======================================================
5 4-5  champions
3-4 4-5 loyal_customers
4-5 2-3 potential_loyalists
5 1    new_customers
4 1    promising
3 3    need_attention
3 1-2  about_to_sleep
1-2 3-4 at_risk
1-2 5  cannot_lose_them
1-2 1-2 hibernating (except R 1 F 1)
1 1    lost
=====  ======================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cdp_core.timeutil import as_utc

from cdp_profiles.analytics.orders import History

GROUPS = (
    "champions", "loyal_customers", "potential_loyalists", "new_customers", "promising", "need_attention",
    "about_to_sleep", "at_risk", "cannot_lose_them", "hibernating", "lost",
)  # fmt: skip


def group(r: int, f: int) -> str:
    """The named group of recency score ``r`` and frequency score ``f`` (both 1..5)."""
    if r == 5 and f >= 4:
        return "champions"
    if r >= 3 and f >= 4:
        return "loyal_customers"
    if r >= 4 and f >= 2:
        return "potential_loyalists"
    if r == 5:
        return "new_customers"
    if r == 4:
        return "promising"
    if r == 3:
        return "need_attention" if f == 3 else "about_to_sleep"
    if f == 5:
        return "cannot_lose_them"
    if f >= 3:
        return "at_risk"
    return "lost" if r == 1 and f == 1 else "hibernating"


def scores(values: Sequence[float | None], bins: int) -> list[int | None]:
    """Scores 1..bins by rank, higher values better; ties take the lowest position; None stays None."""
    present = sorted(v for v in values if v is not None)
    n = len(present)
    first: dict[float, int] = {}
    for position, value in enumerate(present, start=1):
        first.setdefault(value, position)
    return [None if v is None else 1 + (first[v] - 1) * bins // n for v in values]


def to_five(score: int, bins: int) -> int:
    return 1 + (score - 1) * 5 // bins


@dataclass(frozen=True)
class Rfm:
    profile_id: str
    recency_days: int
    frequency: int
    monetary: float | None
    r: int
    f: int
    m: int | None

    @property
    def score(self) -> str | None:
        """``"545"``: R, F and M side by side (None without a monetary score)."""
        return None if self.m is None else f"{self.r}{self.f}{self.m}"

    def group(self, bins: int) -> str:
        return group(to_five(self.r, bins), to_five(self.f, bins))


def rfm(people: Sequence[History], now: datetime, bins: int = 5) -> list[Rfm]:
    """Every person's scores, in the order of ``people``."""
    today = as_utc(now).date()
    recency = [(today - as_utc(h.last).date()).days for h in people]
    r = scores([-float(d) for d in recency], bins)
    f = scores([float(h.orders) for h in people], bins)
    m = scores([h.amount for h in people], bins)
    out = []
    for h, days, ri, fi, mi in zip(people, recency, r, f, m, strict=True):
        assert ri is not None and fi is not None
        out.append(Rfm(h.profile_id, days, h.orders, h.amount, ri, fi, mi))
    return out
