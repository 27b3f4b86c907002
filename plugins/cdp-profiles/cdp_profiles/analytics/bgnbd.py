"""STUB of H-clvmath's BG/NBD module, only so that the store integration runs before it is merged.

Same names and signatures as the contract; the merge takes the real module (tests, docs, checks).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special  # type: ignore[import-untyped]


@dataclass(frozen=True)
class BgNbdFit:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n: int
    converged: bool

    def expected_purchases(self, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> NDArray[np.float64]:
        x, tx, age = (np.asarray(v, float) for v in (frequency, recency, T))
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + age + t))
        first = (a + b + x - 1) / (a - 1) * (1 - ((alpha + age) / (alpha + age + t)) ** (r + x) * hyp)
        return np.asarray(first / (1 + (x > 0) * a / (b + x - 1) * ((alpha + age) / (alpha + tx)) ** (r + x)), float)

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> NDArray[np.float64]:
        x, tx, age = (np.asarray(v, float) for v in (frequency, recency, T))
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        odds = (x > 0) * a / (b + np.maximum(x, 1) - 1) * ((alpha + age) / (alpha + tx)) ** (r + x)
        return np.asarray(1 / (1 + odds), float)

    def expected_purchases_new(self, t: ArrayLike) -> NDArray[np.float64] | float:
        t = np.asarray(t, float)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        hyp = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ll(params: NDArray[np.float64], x: NDArray[np.float64], tx: NDArray[np.float64], T: NDArray[np.float64],
        w: NDArray[np.float64]) -> float:  # fmt: skip
    r, alpha, a, b = np.exp(params)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + tx), -np.inf)
    return float(-(w * (a1 + a2 + np.logaddexp(a3, a4))).sum())


def fit(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, weights: ArrayLike | None = None) -> BgNbdFit:
    x, tx, age = (np.asarray(v, float) for v in (frequency, recency, T))
    if len(x) < 3 or (x < 0).any() or (tx > age).any() or ((x == 0) & (tx > 0)).any():
        raise ValueError("bad input to the BG/NBD fit")
    w = np.ones_like(x) if weights is None else np.asarray(weights, float)
    res = optimize.minimize(_ll, np.log([1.0, max(age.mean(), 1.0), 1.0, 1.0]), args=(x, tx, age, w),
                            method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-8, "fatol": 1e-10})  # fmt: skip
    r, alpha, a, b = np.exp(res.x)
    return BgNbdFit(float(r), float(alpha), float(a), float(b), float(-res.fun), len(x), bool(res.success))
