"""Intervals and tests for NPS that behave at small n (docs/nps.md, "How precise is it").

The adjusted Wald interval of Rocks (2016, "Interval Estimation for the 'Net Promoter
Score'", The American Statistician 70(4)): add pseudo-answers (3/4 of a promoter,
3/2 of a passive and 3/4 of a detractor: 3 in all) to the counts, then use the
Wald interval of the adjusted shares:

    n' = n + 3,  p' = (promoters + 3/4) / n',  d' = (detractors + 3/4) / n'
    NPS' = p' - d',  var = p' + d' - (p' - d')^2
    interval = NPS' -/+ z * sqrt(var / n')      (clamped to [-1, 1])

Like Agresti and Coull's adjustment of the binomial interval, the pseudo-answers pull
the centre toward 0 and keep the width above 0 when every answer falls in one
category; the plain Wald interval gives three passives NPS 0 +/- 0.

Two independent groups are compared the same way: each group's counts adjusted, the
difference of the adjusted scores, the variances added, a two-sided z test.
Everything here is in shares (-1..1); callers scale to points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.96
PSEUDO_PROMOTERS = 0.75
PSEUDO_PASSIVES = 1.5
PSEUDO_DETRACTORS = 0.75
PSEUDO_TOTAL = PSEUDO_PROMOTERS + PSEUDO_PASSIVES + PSEUDO_DETRACTORS  # 3


@dataclass(frozen=True)
class Adjusted:
    """A group's counts with the pseudo-answers added: the centre and variance the interval uses."""

    n: float
    """n + 3."""
    nps: float
    """p' - d' (a share, -1..1)."""
    variance: float
    """p' + d' - (p' - d')^2: the variance of one answer's -1 / 0 / +1."""

    @property
    def standard_error(self) -> float:
        return math.sqrt(self.variance / self.n)


def adjusted(promoters: int, passives: int, detractors: int) -> Adjusted:
    n = promoters + passives + detractors + PSEUDO_TOTAL
    p = (promoters + PSEUDO_PROMOTERS) / n
    d = (detractors + PSEUDO_DETRACTORS) / n
    return Adjusted(n, p - d, max(0.0, p + d - (p - d) ** 2))


def interval(promoters: int, passives: int, detractors: int, z: float = Z95) -> tuple[float, float] | None:
    """The adjusted Wald interval of the NPS as shares (-1..1), clamped; None without answers."""
    if promoters + passives + detractors == 0:
        return None
    a = adjusted(promoters, passives, detractors)
    half = z * a.standard_error
    return max(-1.0, a.nps - half), min(1.0, a.nps + half)


@dataclass(frozen=True)
class Comparison:
    """NPS of a group minus NPS of the rest, as shares: raw difference, adjusted interval, p-value."""

    difference: float
    """The plain difference of the two scores (what the tables show)."""
    low: float
    high: float
    p_value: float


def compare(group: tuple[int, int, int], rest: tuple[int, int, int], z: float = Z95) -> Comparison:
    """Two independent groups, counts as (promoters, passives, detractors); both need answers.

    The interval is centred on the difference of the adjusted scores, its standard error
    is sqrt(var_g / n_g' + var_r / n_r'); the p-value is the two-sided z test of "no difference"
    on the same adjusted figures. Clamped to [-2, 2].
    """
    if sum(group) == 0 or sum(rest) == 0:
        raise ValueError("both groups need answers to be compared")
    g, r = adjusted(*group), adjusted(*rest)
    raw = (group[0] - group[2]) / sum(group) - (rest[0] - rest[2]) / sum(rest)
    centre = g.nps - r.nps
    se = math.sqrt(g.variance / g.n + r.variance / r.n)
    if se == 0:  # cannot happen with the pseudo-answers, kept for safety
        return Comparison(raw, centre, centre, 1.0 if centre == 0 else 0.0)
    p_value = math.erfc(abs(centre) / se / math.sqrt(2))
    return Comparison(raw, max(-2.0, centre - z * se), min(2.0, centre + z * se), p_value)


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the order given.

    p_adj(i) = min over j >= i (ranked by p) of p_(j) * m / j, capped at 1.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted_p = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        adjusted_p[i] = min(1.0, running)
    return adjusted_p
