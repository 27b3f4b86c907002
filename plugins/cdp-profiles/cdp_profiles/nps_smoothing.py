"""Smoothing of the NPS trend (docs/nps.md, "Smoothing"): a moving average or exponential smoothing.

Both smooth the *counts* of promoters, passives and detractors, then take the NPS of the
smoothed counts, rather than averaging the periods' NPS values: a period with 3 answers
then moves the line as much as its 3 answers weigh, not as much as a period with 300.

- ``ma:N``: the NPS of the answers of the last N periods pooled (the period and the N - 1
  before it; fewer at the start of the trend).
- ``ewma:ALPHA``: the NPS of exponentially weighted counts: the period's own counts weigh 1,
  the period before (1 - ALPHA), k periods before (1 - ALPHA)^k. Normalizing by the weights
  cancels out in the NPS (a ratio of counts).

A period without answers (n = 0) adds nothing: the moving average pools what is left in its
window (None when the whole window is empty); exponential smoothing carries the last smoothed
value forward (every count decays by the same factor, so the ratio stays).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cdp_profiles.nps import NpsError, NpsPeriod

MAX_WINDOW = 104
"""The longest moving average, in periods (two years of weeks)."""


@dataclass(frozen=True)
class Smoothing:
    method: Literal["ma", "ewma"]
    window: int | None = None
    alpha: float | None = None

    @property
    def label(self) -> str:
        return (
            f"moving average of {self.window} periods" if self.method == "ma" else f"exponential, alpha {self.alpha:g}"
        )

    @property
    def spec(self) -> str:
        return f"ma:{self.window}" if self.method == "ma" else f"ewma:{self.alpha:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "window": self.window, "alpha": self.alpha, "spec": self.spec}


@dataclass(frozen=True)
class Smoothed:
    """A period's smoothed NPS (None: nothing to smooth yet) and the (weighted) answers behind it."""

    nps: float | None
    n: float


_SPEC = re.compile(r"(?P<method>[a-z]+):(?P<value>\S+)")


def parse_smoothing(text: str) -> Smoothing:
    """``ma:N`` (N whole, 2..104) or ``ewma:ALPHA`` (0 < ALPHA <= 1); raises NpsError saying what is wrong."""
    match = _SPEC.fullmatch(text.strip().lower())
    usage = "write ma:N (a moving average over N periods, like ma:3) or ewma:ALPHA (like ewma:0.3)"
    if match is None or match["method"] not in ("ma", "ewma"):
        raise NpsError(f"unknown smoothing {text!r}: {usage}")
    value = match["value"]
    if match["method"] == "ma":
        if not value.isdigit() or not 2 <= int(value) <= MAX_WINDOW:
            raise NpsError(f"ma:{value}: the window is a whole number of periods from 2 to {MAX_WINDOW}")
        return Smoothing("ma", window=int(value))
    try:
        alpha = float(value)
    except ValueError:
        alpha = float("nan")
    if not 0 < alpha <= 1:  # NaN fails too
        raise NpsError(f"ewma:{value}: alpha is a number above 0 and at most 1 (ewma:0.3)")
    return Smoothing("ewma", alpha=alpha)


def smooth(trend: Sequence[NpsPeriod], smoothing: Smoothing) -> list[Smoothed]:
    """One :class:`Smoothed` per period of ``trend`` (oldest first, gaps included as n = 0)."""
    counts = [(p.figure.promoters, p.figure.passives, p.figure.detractors) for p in trend]
    out: list[Smoothed] = []
    if smoothing.method == "ma":
        assert smoothing.window is not None
        for i in range(len(counts)):
            window = counts[max(0, i - smoothing.window + 1) : i + 1]
            out.append(_of(*(float(sum(c[j] for c in window)) for j in range(3))))
        return out
    assert smoothing.alpha is not None
    keep = 1.0 - smoothing.alpha
    promoters = passives = detractors = 0.0
    for p, s, d in counts:
        promoters, passives, detractors = p + keep * promoters, s + keep * passives, d + keep * detractors
        out.append(_of(promoters, passives, detractors))
    return out


def _of(promoters: float, passives: float, detractors: float) -> Smoothed:
    n = promoters + passives + detractors
    return Smoothed(100 * (promoters - detractors) / n if n > 0 else None, n)
