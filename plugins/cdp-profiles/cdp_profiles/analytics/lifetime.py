"""Lifetime value from the store: order histories -> the models' arrays -> fits, predictions, holdout check.

The models (:mod:`cdp_profiles.analytics.bgnbd`, :mod:`cdp_profiles.analytics.gammagamma`) take
per person, in **days**:

- ``frequency``: repeat purchases, the number of distinct UTC days with a counted order, minus one
  (orders on the same day are one purchase, as the models expect);
- ``recency``: days from the first purchase day to the last;
- ``T``: days from the first purchase day to the observation's last day: the UTC day of ``now``, or
  with a holdout the calibration's last day (whole days, as the published CDNOW summary counts them:
  a customer whose first purchase was on 1997-01-01 has T = 272 days = 38.86 weeks on 1997-09-30);
- ``monetary_mean``: the mean amount of the repeat purchase days (the first purchase left out, as
  the Gamma-Gamma model is fitted), in the base currency; people without one are not in its fit
  and get no value.

The unit does not change the fit (a model fitted in weeks has ``alpha`` seven times smaller and the
same ``r``, ``a``, ``b``); days are what the traits' horizons are written in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cdp_profiles.analytics import bgnbd, gammagamma
from cdp_profiles.analytics.holdout import HoldoutComparison, compare
from cdp_profiles.analytics.orders import Purchase

FREQUENCY_GROUPS = 7
"""The holdout table: calibration frequency 0, 1, ..., 6 and 7 or more."""


@dataclass
class Summary:
    """The models' input, one entry per person (people whose first purchase is in the period)."""

    profile_ids: list[str]
    frequency: NDArray[np.float64]
    recency: NDArray[np.float64]
    T: NDArray[np.float64]
    monetary_mean: NDArray[np.float64]
    """NaN where the person has no repeat purchase with a convertible amount."""

    @property
    def n(self) -> int:
        return len(self.profile_ids)


def summarize(purchases: Sequence[Purchase], end: date, last_day: date | None = None) -> Summary:
    """Per person: frequency, recency, T (days to the day ``end``) from the purchase days up to ``last_day`` (all: None).

    ``purchases`` are sorted by person, then day (:func:`~cdp_profiles.analytics.orders.purchase_days`).
    """
    ids: list[str] = []
    freq: list[float] = []
    rec: list[float] = []
    age: list[float] = []
    mon: list[float] = []
    i, rows = 0, len(purchases)
    while i < rows:
        pid = purchases[i].profile_id
        j = i
        while j < rows and purchases[j].profile_id == pid:
            j += 1
        days = [p for p in purchases[i:j] if last_day is None or p.day <= last_day]
        i = j
        if not days:
            continue
        first = days[0].day
        repeat = [p.amount for p in days[1:] if p.amount is not None]
        ids.append(pid)
        freq.append(len(days) - 1)
        rec.append((days[-1].day - first).days)
        age.append((end - first).days)
        mon.append(sum(repeat) / len(repeat) if repeat else float("nan"))
    return Summary(ids, np.array(freq, float), np.array(rec, float), np.array(age, float), np.array(mon, float))


@dataclass
class Fits:
    bg: bgnbd.BgNbdFit
    gg: gammagamma.GammaGammaFit | None
    gg_error: str | None = None
    """Why there is no Gamma-Gamma fit (too few repeat buyers with an amount, say)."""


def fit(summary: Summary) -> Fits:
    """BG/NBD on everyone; Gamma-Gamma on the repeat buyers with an amount. Raises ValueError (the models')."""
    bg = bgnbd.fit(summary.frequency, summary.recency, summary.T)
    spenders = _spenders(summary)
    try:
        gg = gammagamma.fit(summary.frequency[spenders], summary.monetary_mean[spenders])
    except ValueError as exc:
        return Fits(bg, None, str(exc))
    return Fits(bg, gg)


def _spenders(summary: Summary) -> NDArray[np.bool_]:
    return (summary.frequency > 0) & np.isfinite(summary.monetary_mean) & (summary.monetary_mean > 0)


@dataclass
class Predictions:
    """Per person of the summary: expected purchases over the horizon, P(alive), expected value (NaN: none)."""

    horizon_days: int
    expected_purchases: NDArray[np.float64]
    p_alive: NDArray[np.float64]
    value: NDArray[np.float64]


def predict(summary: Summary, fits: Fits, horizon_days: int, annual_discount_rate: float = 0.0) -> Predictions:
    s = summary
    expected = np.asarray(fits.bg.expected_purchases(horizon_days, s.frequency, s.recency, s.T), float)
    alive = np.asarray(fits.bg.p_alive(s.frequency, s.recency, s.T), float)
    value = np.full(s.n, np.nan)
    if fits.gg is not None:
        spenders = _spenders(s)
        daily = (1.0 + annual_discount_rate) ** (1 / 365) - 1.0
        value[spenders] = np.asarray(gammagamma.clv(
            fits.bg, fits.gg, s.frequency[spenders], s.recency[spenders], s.T[spenders], s.monetary_mean[spenders],
            horizon=horizon_days, discount_rate_per_unit=daily, step=1,
        ), float)  # fmt: skip
    return Predictions(horizon_days, expected, alive, value)


# -- calibration against a holdout ------------------------------------------------------------


@dataclass
class Holdout:
    """Calibration up to ``cut`` (inclusive), holdout the ``days`` after it: actual vs predicted repeat purchases."""

    cut: date
    days: int
    comparison: HoldoutComparison

    def to_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {
            "calibration_end": self.cut.isoformat(), "holdout_days": self.days, "people": c.customers,
            "actual_purchases": c.actual_total, "predicted_purchases": round(c.predicted_total, 4),
            "ratio": None if c.ratio is None else round(c.ratio, 4),
            "mean_absolute_error": round(c.mae, 4),
            "by_calibration_frequency": [
                {"frequency": g.label, "people": g.customers, "actual_mean": round(g.actual_mean, 4),
                 "predicted_mean": round(g.predicted_mean, 4)} for g in c.groups if g.customers
            ],
        }  # fmt: skip


def split(purchases: Sequence[Purchase], days: int) -> tuple[date, date]:
    """(calibration's last day, holdout's last day): the cut is the last purchase day - ``days``."""
    if days < 1:
        raise ValueError(f"--holdout takes a number of days, 1 or more; got {days}")
    if not purchases:
        raise ValueError("no counted orders: nothing to split")
    last = max(p.day for p in purchases)
    return last - timedelta(days=days), last


def holdout(purchases: Sequence[Purchase], days: int) -> tuple[Summary, Fits, Holdout]:
    """Fit on the calibration part, then compare each person's predicted purchases in the holdout with theirs."""
    cut, last = split(purchases, days)
    calibration = summarize(purchases, cut, cut)
    if calibration.n == 0:
        raise ValueError(
            f"no purchase on or before {cut.isoformat()}: the holdout of {days} days leaves no calibration"
        )
    fits = fit(calibration)
    position = {pid: k for k, pid in enumerate(calibration.profile_ids)}
    actual = np.zeros(calibration.n)
    for p in purchases:
        k = position.get(p.profile_id)
        if k is not None and cut < p.day <= last:
            actual[k] += 1
    c = calibration
    report = Holdout(
        cut, days, compare(fits.bg, c.frequency, c.recency, c.T, actual, float(days), top_group=FREQUENCY_GROUPS)
    )
    return calibration, fits, report
