"""Gamma-Gamma: how much a customer spends per purchase, and the lifetime value of purchases and spend.

The spend model of Fader, Hardie and Lee, "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis",
Journal of Marketing Research 42(4), 2005, as written up in Fader and Hardie's note "The Gamma-Gamma Model of
Monetary Value" (2013). A customer's purchase values z_1, z_2, ... are independent draws from
``Gamma(shape p, rate nu)`` (mean ``p / nu``); across customers ``nu ~ Gamma(shape q, rate v)`` (the note
calls ``v`` gamma). So the population's mean spend per purchase is ``p v / (q - 1)`` (finite when q > 1),
``p`` says how much one customer's purchases vary around their own mean, ``q`` how much customers' means vary,
and ``v`` is in the currency's unit (``p`` and ``q`` have none).

Per customer the model needs ``frequency`` x (the number of repeat purchases, as for BG/NBD) and
``monetary_mean`` (the mean value of those x repeat purchases -- the first purchase left out, as in the note).
Only customers with x > 0 say anything about spend: :func:`fit` uses them and ignores the rest. The
likelihood of a customer's mean m given x is

    f(m) = G(px+q) / (G(px) G(q)) * v^q x^(px) m^(px-1) / (v + x m)^(px+q),

maximized over the log-parameters with its analytic gradient (values divided by their mean first, so the
optimizer sees ``v`` near 1 in any currency). The conditional expected spend per purchase is the posterior
mean of p / nu,

    E[Z | x, m] = (v + x m) p / (px + q - 1)
                = (q-1)/(px+q-1) * p v/(q-1) + px/(px+q-1) * m,

a weighted average of the population mean and the customer's own mean that trusts the latter more the more
purchases it rests on (x = 0 gives the population mean). The model assumes that spend per purchase does not
depend on how often a customer buys; ``frequency_spend_correlation`` (Pearson, over the fitted customers) is
reported so that the assumption can be checked -- a value far from 0 means the CLV figures are suspect.

:func:`clv` combines a BG/NBD fit and a Gamma-Gamma fit: the expected value of each customer's purchases over
``horizon`` time units, in steps of ``step`` units: the expected purchases falling in each step (from BG/NBD's
conditional expectation) times the expected spend per purchase, discounted by ``(1 + rate)^-t`` at the end
``t`` of the step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from cdp_profiles.analytics import _mle
from cdp_profiles.analytics._mle import FloatArray
from cdp_profiles.analytics.bgnbd import BgNbdFit, validate

PARAMS = ("p", "q", "v")
# Fewer repeat customers than this do not identify three parameters: fit refuses them.
# Customers times steps per block of clv's work: memory stays flat for any population and horizon.
_BLOCK = 1 << 21
MIN_CUSTOMERS = 10


@dataclass(frozen=True)
class GammaGammaFit:
    """A fitted Gamma-Gamma spend model."""

    p: float
    q: float
    v: float
    log_likelihood: float
    n: int  # repeat customers the fit used
    converged: bool
    message: str = ""
    std_errors: tuple[float, float, float] = (np.nan, np.nan, np.nan)
    frequency_spend_correlation: float = np.nan

    @property
    def mean_spend(self) -> float:
        """The population's mean spend per purchase, p v / (q - 1); infinite when q <= 1."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else float("inf")

    def expected_spend(self, frequency: ArrayLike, monetary_mean: ArrayLike) -> FloatArray:
        """Expected spend per purchase of each customer (the population mean for those with frequency 0)."""
        x, m = _spend_inputs(frequency, monetary_mean)
        return self._expected_spend(x, m)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["std_errors"] = {name: _json_float(se) for name, se in zip(PARAMS, self.std_errors, strict=True)}
        d["frequency_spend_correlation"] = _json_float(self.frequency_spend_correlation)
        return {"model": "gammagamma", **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GammaGammaFit:
        se = d.get("std_errors") or {}
        corr = d.get("frequency_spend_correlation")
        return cls(
            p=float(d["p"]),
            q=float(d["q"]),
            v=float(d["v"]),
            log_likelihood=float(d["log_likelihood"]),
            n=int(d["n"]),
            converged=bool(d["converged"]),
            message=str(d.get("message", "")),
            std_errors=tuple(np.nan if se.get(k) is None else float(se[k]) for k in PARAMS),  # type: ignore[arg-type]
            frequency_spend_correlation=np.nan if corr is None else float(corr),
        )

    def _expected_spend(self, x: FloatArray, m: FloatArray) -> FloatArray:
        denominator = self.p * x + self.q - 1
        if (denominator <= 0).any():
            what = "frequency 0 (the population mean)" if (x == 0).any() else "the lowest frequencies"
            raise ValueError(
                f"the fitted q = {self.q:.4g} <= 1 (p = {self.p:.4g}) leaves the expected spend of {what} infinite"
            )
        return (self.v + x * m) * self.p / denominator


def fit(frequency: ArrayLike, monetary_mean: ArrayLike, *, weights: ArrayLike | None = None) -> GammaGammaFit:
    """Fit Gamma-Gamma by maximum likelihood to the customers with frequency > 0 (the others are ignored).

    ``weights`` (optional) is how many customers share each row. Raises ValueError for bad input and for too
    few repeat customers; ``converged`` is False when the optimum is not a proper one (see ``message``) -- e.g.
    when every customer spends the same, q runs to infinity.
    """
    x, m = _spend_inputs(frequency, monetary_mean)
    w = _mle.customer_weights(weights, len(x))
    use = (x > 0) & (w > 0)
    x, m, w = x[use], m[use], w[use]
    n = int(w.sum())
    if n < MIN_CUSTOMERS:
        raise ValueError(f"Gamma-Gamma needs at least {MIN_CUSTOMERS} customers with frequency > 0, got {n}")
    _mle.first_bad(
        "monetary_mean must be > 0 for customers with frequency > 0 (leave out those whose purchases net to 0)",
        m <= 0,
        lambda i: f"monetary_mean {m[i]}",
    )
    correlation = _weighted_correlation(x, m, w)
    (x, m), w = _mle.compress([x, m], w)
    total = float(w.sum())
    scale = float(np.sum(w * m) / total)
    m = m / scale
    start = np.zeros(3)

    def mean_loglik(theta: FloatArray) -> tuple[float, FloatArray]:
        return _loglik(theta, x, m, w, total)

    best = _mle.maximize(mean_loglik, start, total, PARAMS)
    p, q, v_scaled = (float(value) for value in best.params)
    se = best.std_errors * np.array([1.0, 1.0, scale])
    return GammaGammaFit(
        p=p,
        q=q,
        v=v_scaled * scale,
        # Back to the caller's currency: each customer's density of m picks up 1/scale.
        log_likelihood=best.log_likelihood - total * float(np.log(scale)),
        n=n,
        converged=best.converged,
        message=best.message,
        std_errors=(float(se[0]), float(se[1]), float(se[2])),
        frequency_spend_correlation=correlation,
    )


def clv(
    bg: BgNbdFit,
    gg: GammaGammaFit,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_mean: ArrayLike,
    *,
    horizon: float,
    discount_rate_per_unit: float = 0.0,
    step: float = 1,
) -> FloatArray:
    """Expected discounted value of each customer's purchases over the next ``horizon`` time units.

    The sum over steps of ``step`` units (the last one shorter when ``horizon`` is not a multiple) of the
    expected purchases in the step times the expected spend per purchase, divided by
    ``(1 + discount_rate_per_unit) ** t`` with t the end of the step. Units: the time unit of the BG/NBD fit
    for ``horizon`` and ``step``, the rate per that unit (e.g. a yearly 10 % is ``1.1 ** (1/52) - 1`` per
    week), the currency of ``monetary_mean`` for the result.
    """
    for name, value in (("horizon", horizon), ("step", step)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number of time units, got {value}")
    if not (np.isfinite(discount_rate_per_unit) and discount_rate_per_unit >= 0):
        raise ValueError(f"discount_rate_per_unit must be >= 0, got {discount_rate_per_unit}")
    n_steps = int(np.ceil(horizon / step - 1e-9))
    if n_steps > 100_000:
        raise ValueError(f"horizon / step = {horizon / step:.0f} steps: use a longer step")
    x, tx, age = validate(frequency, recency, T)
    xs, m = _spend_inputs(frequency, monetary_mean)
    spend = gg._expected_spend(xs, m)
    alive = bg._p_alive(x, tx, age)
    ends = np.minimum(np.arange(1, n_steps + 1) * float(step), float(horizon))
    factors = (1.0 + discount_rate_per_unit) ** -ends
    discounted = np.empty(len(x))
    # Cumulative expectations at every step end, (customers, steps) in one pass per block of customers.
    rows = max(1, _BLOCK // n_steps)
    for i in range(0, len(x), rows):
        cumulative = bg._expected_if_alive_horizons(ends, x[i : i + rows], age[i : i + rows])
        discounted[i : i + rows] = np.diff(cumulative, axis=1, prepend=0.0) @ factors
    return np.asarray(alive * discounted * spend, dtype=np.float64)


def _spend_inputs(frequency: ArrayLike, monetary_mean: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = _mle.as_vector("frequency", frequency)
    m = _mle.as_vector("monetary_mean", monetary_mean)
    _mle.same_length(frequency=x, monetary_mean=m)
    _mle.check_counts("frequency (repeat purchases)", x)
    _mle.first_bad("monetary_mean must be >= 0", m < 0, lambda i: f"monetary_mean {m[i]}")
    return x, m


def _loglik(theta: FloatArray, x: FloatArray, m: FloatArray, w: FloatArray, total: float) -> tuple[float, FloatArray]:
    """Mean log-likelihood per customer and its gradient in the log-parameters."""
    p, q, v = np.exp(theta)
    gl, dg = special.gammaln, special.digamma
    px = p * x
    log_vxm = np.log(v + x * m)
    ll = gl(px + q) - gl(px) - gl(q) + q * np.log(v) + px * np.log(x) + (px - 1) * np.log(m) - (px + q) * log_vxm
    d_p = x * (dg(px + q) - dg(px) + np.log(x) + np.log(m) - log_vxm)
    d_q = dg(px + q) - dg(q) + np.log(v) - log_vxm
    d_v = q / v - (px + q) / (v + x * m)
    grads = np.array([d_p * p, d_q * q, d_v * v])
    return float(np.dot(w, ll) / total), grads @ w / total


def _weighted_correlation(x: FloatArray, m: FloatArray, w: FloatArray) -> float:
    mx, mm = np.average(x, weights=w), np.average(m, weights=w)
    cov = np.average((x - mx) * (m - mm), weights=w)
    var = np.average((x - mx) ** 2, weights=w) * np.average((m - mm) ** 2, weights=w)
    return float(cov / np.sqrt(var)) if var > 0 else float("nan")


def _json_float(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)
