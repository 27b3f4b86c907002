"""STUB of H-clvmath's Gamma-Gamma module, only so that the store integration runs before it is merged.

Same names and signatures as the contract; the merge takes the real module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special  # type: ignore[import-untyped]

from cdp_profiles.analytics.bgnbd import BgNbdFit


@dataclass(frozen=True)
class GammaGammaFit:
    p: float
    q: float
    v: float
    log_likelihood: float
    n: int
    converged: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ll(params: NDArray[np.float64], x: NDArray[np.float64], m: NDArray[np.float64]) -> float:
    p, q, v = np.exp(params)
    ll = (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(v)
          + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(x * m + v))  # fmt: skip
    return float(-ll.sum())


def fit(frequency: ArrayLike, monetary_mean: ArrayLike) -> GammaGammaFit:
    x, m = np.asarray(frequency, float), np.asarray(monetary_mean, float)
    if len(x) < 3 or (x <= 0).any() or (m <= 0).any():
        raise ValueError("bad input to the Gamma-Gamma fit")
    res = optimize.minimize(_ll, np.zeros(3), args=(x, m), method="Nelder-Mead", options={"maxiter": 4000})
    p, q, v = np.exp(res.x)
    return GammaGammaFit(float(p), float(q), float(v), float(-res.fun), len(x), bool(res.success))


def expected_spend(gg: GammaGammaFit, frequency: ArrayLike, monetary_mean: ArrayLike) -> NDArray[np.float64]:
    x, m = np.asarray(frequency, float), np.asarray(monetary_mean, float)
    return np.asarray((gg.p * (gg.v + x * m)) / (gg.p * x + gg.q - 1), float)


def clv(bg: BgNbdFit, gg: GammaGammaFit, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike,
        monetary_mean: ArrayLike, *, horizon: float, discount_rate_per_unit: float = 0.0,
        step: float = 1) -> NDArray[np.float64]:  # fmt: skip
    spend = expected_spend(gg, frequency, monetary_mean)
    total = np.zeros_like(spend)
    t = step
    while t <= horizon + 1e-9:
        gained = bg.expected_purchases(t, frequency, recency, T) - bg.expected_purchases(t - step, frequency, recency, T)
        total += spend * gained / (1 + discount_rate_per_unit) ** t
        t += step
    return total
