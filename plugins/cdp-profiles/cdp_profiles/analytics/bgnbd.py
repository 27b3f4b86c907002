"""BG/NBD: how many purchases a customer will make, and whether they are still a customer.

The beta-geometric / negative binomial distribution model of Fader, Hardie and Lee, "'Counting Your Customers'
the Easy Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2), 2005. For customers who buy
again and again at no fixed schedule (non-contractual), and who may leave without saying so:

* while active, a customer's repeat purchases form a Poisson process with rate ``lambda`` (purchases per time
  unit); across customers ``lambda ~ Gamma(shape r, rate alpha)``, so the mean rate is ``r / alpha``;
* after each repeat purchase the customer drops out for good with probability ``p``; across customers
  ``p ~ Beta(a, b)``, so the mean drop-out probability per purchase is ``a / (a + b)``;
* ``lambda`` and ``p`` are independent.

Per customer the model needs ``frequency`` x (the number of repeat purchases: all purchases but the first),
``recency`` t_x (the time of the last purchase, counted from the first; 0 when x = 0) and ``T`` (the customer's
age: the end of the observation counted from the first purchase). Any time unit works (days, weeks) as long
as all three, and the horizons ``t`` of the predictions, use the same one; ``alpha`` is then in that unit
too (``r / alpha`` is purchases per unit) while ``r``, ``a`` and ``b`` have no unit.

The likelihood of one customer (the paper's equation 6) is

    L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
        + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x)),

evaluated in log space with ``gammaln`` and the two terms added with log-sum-exp, so it stays finite for
customers with hundreds of purchases and long ages. :func:`fit` maximizes it over the log-parameters with
the analytic gradient (see ``_mle``); the times are divided by their mean first so that the optimizer always
sees ``alpha`` near 1, whatever the time unit, and the result is scaled back.

Predictions (the paper's equations 9, 10 and 11 / appendix):

* ``p_alive``: P(still active at T) = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x));
* ``expected_purchases(t, ...)``: expected purchases in (T, T+t] given the history, = P(alive) times
  (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)], z = t/(alpha+T+t);
* ``expected_purchases_new(t)``: expected repeat purchases of a new customer in their first t (x = T = 0).

The Gauss hypergeometric function 2F1 comes from ``scipy.special.hyp2f1``. It is evaluated after Euler's
transformation, (1-z)^(r+x) 2F1(r+x, b+x; c; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; c; z), whose first two
arguments no longer grow with x, so it stays in hyp2f1's accurate range (0 <= z < 1, moderate arguments)
for any purchase count. Checked against 60-digit arithmetic over 300 random parameter sets (purchase counts
up to 3,000, horizons up to 500 times the customer's age): the relative error stayed below 1e-12. Guards:
near a = 1 the formula is 0/0 and is interpolated linearly between a = 1 -+ 2e-4 (the expectation is smooth
in a); every value is checked against the bounds the expectation must satisfy (0 <= E <= (r+x) t/(alpha+T)
while active), and a customer with one outside them (or not finite, or with a+b+x-1 <= 0 where the series
has no meaning) is computed from the defining integral over p ~ Beta(a, b+x),
``E[(1 - ((alpha+T)/(alpha+T+p t))^(r+x)) / p]``, by a fixed quadrature vectorized over customers and
horizons (``_expected_if_alive_nodes``; ~1e-11 against adaptive quadrature). A fit with a + b above 1e4
(a Beta close to a point mass, what a fit that does not converge often returns) goes to the quadrature
directly: hyp2f1 loses digits there (1e-8) while staying inside the bounds.

A forecast over many horizons (``gammagamma.clv``, one per step) evaluates all horizons of all customers
in one pass (``_expected_if_alive_horizons``), once per distinct (x, T).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from cdp_profiles.analytics import _mle
from cdp_profiles.analytics._mle import FloatArray

PARAMS = ("r", "alpha", "a", "b")
# Fewer customers than this do not identify four parameters: fit refuses them.
MIN_CUSTOMERS = 10
_A_NEAR_ONE = 1e-4
# Beyond this a + b (a Beta close to a point mass) hyp2f1 loses digits while staying inside the bounds
# that would catch it: such fits go to the quadrature directly.
_CLOSED_FORM_MAX_AB = 1e4
# Array elements per block of work, to keep memory flat for any number of customers and horizons.
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BgNbdFit:
    """A fitted BG/NBD model: the parameters, how well they fit, and the predictions they make."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n: int
    converged: bool
    message: str = ""
    # Standard errors of (r, alpha, a, b) from the observed information (nan when not identified).
    std_errors: tuple[float, float, float, float] = (np.nan, np.nan, np.nan, np.nan)

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """Probability that each customer is still active at the end of their observation, T."""
        x, tx, age = validate(frequency, recency, T)
        return self._p_alive(x, tx, age)

    def expected_purchases(self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """Expected number of purchases of each customer in the next ``t`` time units, given their history."""
        x, tx, age = validate(frequency, recency, T)
        horizon = _horizon(t, len(x))
        return self._p_alive(x, tx, age) * self._expected_if_alive(horizon, x, age)

    def expected_purchases_new(self, t: ArrayLike) -> FloatArray | float:
        """Expected number of repeat purchases a new customer makes in their first ``t`` time units."""
        scalar = np.ndim(t) == 0
        horizon = _mle.as_vector("t", t)
        if (horizon < 0).any():
            raise ValueError("t must be >= 0")
        zeros = np.zeros_like(horizon)
        value = self._expected_if_alive(horizon, zeros, zeros)
        return float(value[0]) if scalar else value

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["std_errors"] = {name: _json_float(se) for name, se in zip(PARAMS, self.std_errors, strict=True)}
        return {"model": "bgnbd", **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BgNbdFit:
        se = d.get("std_errors") or {}
        return cls(
            r=float(d["r"]),
            alpha=float(d["alpha"]),
            a=float(d["a"]),
            b=float(d["b"]),
            log_likelihood=float(d["log_likelihood"]),
            n=int(d["n"]),
            converged=bool(d["converged"]),
            message=str(d.get("message", "")),
            std_errors=tuple(np.nan if se.get(p) is None else float(se[p]) for p in PARAMS),  # type: ignore[arg-type]
        )

    def _p_alive(self, x: FloatArray, tx: FloatArray, age: FloatArray) -> FloatArray:
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        repeat = x > 0
        log_odds_dead = np.full(len(x), -np.inf)
        xr = x[repeat]
        log_odds_dead[repeat] = (
            np.log(a) - np.log(b + xr - 1) + (r + xr) * (np.log(alpha + age[repeat]) - np.log(alpha + tx[repeat]))
        )
        return np.asarray(special.expit(-log_odds_dead), dtype=np.float64)

    def _expected_if_alive(self, t: FloatArray, x: FloatArray, age: FloatArray) -> FloatArray:
        """Expected purchases in the next ``t`` of customers still active, one horizon per customer."""
        return self._expected_if_alive_grid(t[:, None], x, age)[:, 0]

    def _expected_if_alive_horizons(self, horizons: FloatArray, x: FloatArray, age: FloatArray) -> FloatArray:
        """The same for every customer at every horizon: an array (customers, horizons), in one pass.

        Customers with the same (x, T) -- many, when times are whole days -- are computed once.
        """
        # (x, T) as one complex number: np.unique sorts those several times faster than rows.
        keys, at = np.unique(x + 1j * age, return_inverse=True)
        grid = self._expected_if_alive_grid(horizons[None, :], keys.real.copy(), keys.imag.copy())
        return grid[at.reshape(-1)]

    def _expected_if_alive_grid(self, t: FloatArray, x: FloatArray, age: FloatArray) -> FloatArray:
        """Closed form for a (customers, horizons) grid; customers it fails for get the quadrature."""
        if abs(self.a - 1.0) < _A_NEAR_ONE:
            lo = _replace_a(self, 1.0 - 2 * _A_NEAR_ONE)._expected_if_alive_grid(t, x, age)
            hi = _replace_a(self, 1.0 + 2 * _A_NEAR_ONE)._expected_if_alive_grid(t, x, age)
            share = (self.a - (1.0 - 2 * _A_NEAR_ONE)) / (4 * _A_NEAR_ONE)
            return lo + share * (hi - lo)
        t = np.broadcast_to(t, (len(x), t.shape[1]))
        rows = max(1, _CHUNK // max(t.shape[1], 1))
        return np.vstack(
            [self._expected_if_alive_block(t[i : i + rows], x[i : i + rows], age[i : i + rows])
             for i in range(0, len(x), rows)] or [np.zeros((0, t.shape[1]))]
        )  # fmt: skip

    def _expected_if_alive_block(self, t: FloatArray, x: FloatArray, age: FloatArray) -> FloatArray:
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        xc, agec = x[:, None], age[:, None]
        upper = (r + xc) * t / (alpha + agec)
        if a + b > _CLOSED_FORM_MAX_AB:
            bad = np.ones(len(x), dtype=bool)
            value = np.zeros_like(upper)
        else:
            c = a + b + xc - 1
            z = t / (alpha + agec + t)
            with np.errstate(all="ignore"):
                series = special.hyp2f1(a + b - 1 - r, a - 1, c, z)
                value = c / (a - 1) * (1 - np.exp((a - 1) * np.log1p(-z)) * series)
            value = np.where(t == 0, 0.0, value)
            slack = 1e-9 * upper + 1e-300
            out = ~np.isfinite(value) | (value < -slack) | (value > upper + slack) | (c <= 0)
            bad = np.asarray(out.any(axis=1), dtype=bool)
        if bad.any():
            value[bad] = self._expected_if_alive_nodes(t[bad], x[bad], age[bad])
        return np.clip(value, 0.0, upper)

    def _expected_if_alive_nodes(self, t: FloatArray, x: FloatArray, age: FloatArray) -> FloatArray:
        """The defining integral E[(1 - (1 + p t/(alpha+T))^-(r+x)) / p] over p ~ Beta(a, b+x), by quadrature.

        ``t`` is (customers, horizons). In the logit v = log(p/(1-p)) the Beta density is smooth, unimodal
        and log-concave with exponential tails (rates a and b+x), and the integrand's bend (near p ~
        (alpha+T)/((r+x) t)) is smooth too, so the trapezoid rule on a uniform grid converges geometrically.
        The grid is centred on the mean of v, psi(a) - psi(b+x), and reaches 9 standard deviations plus
        40/a (40/(b+x)) each way, where the density has fallen below e^-30 of its peak whatever the shape;
        the step is at most a third of a standard deviation and 0.35 (the integrand's own scale), which
        keeps the error near 1e-12. The weights are normalized to sum to one, so no Beta function is needed
        and a nearly degenerate Beta (a, b in the hundreds of thousands) costs as little as any other.
        """
        a, k = self.a, self.r + x
        bx = self.b + x
        scale = self.alpha + age
        centre = special.digamma(a) - special.digamma(bx)
        sd = np.sqrt(special.polygamma(1, a) + special.polygamma(1, bx))
        left, right = 9 * sd + 40 / a, 9 * sd + 40 / bx
        need = np.ceil((left + right) / np.minimum(sd / 3, 0.35)).astype(int) + 1
        value = np.empty_like(t)
        # Customers needing a similar number of nodes are done together: powers of two from 32.
        size = np.maximum(32, 2 ** np.ceil(np.log2(need))).astype(int)
        for n_nodes in np.unique(size):
            group = np.flatnonzero(size == n_nodes)
            rows = max(1, _CHUNK // (n_nodes * t.shape[1]))
            for i in range(0, len(group), rows):
                g = group[i : i + rows]
                d = -left[g, None] + (left[g] + right[g])[:, None] * np.linspace(0.0, 1.0, n_nodes)
                # log of the density in v relative to the centre: a d - (a+b+x) (softplus(c+d) - softplus(c)).
                rel = a * d - (a + bx[g, None]) * np.log1p(special.expit(centre[g, None]) * np.expm1(d))
                w = np.exp(rel - rel.max(axis=1, keepdims=True))
                w[:, [0, -1]] *= 0.5
                w /= w.sum(axis=1, keepdims=True)
                # (customers, nodes); far in a long left tail (a < 0.05) p underflows where the weight is nil.
                p = np.maximum(special.expit(centre[g, None] + d), 1e-300)
                ratio = t[g][:, :, None] / scale[g, None, None] * p[:, None, :]
                integrand = -np.expm1(-k[g, None, None] * np.log1p(ratio)) / p[:, None, :]
                value[g] = np.einsum("chn,cn->ch", integrand, w)
        return value


def fit(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, weights: ArrayLike | None = None) -> BgNbdFit:
    """Fit BG/NBD by maximum likelihood to one row per customer (or per group of customers, with ``weights``).

    ``weights`` (optional) is how many customers share each row's (frequency, recency, T). Identical rows are
    merged before fitting either way, so a large population costs as much as its distinct histories.
    Raises ValueError for bad input and for data that cannot identify the model (too few customers, nobody
    with a repeat purchase); ``converged`` is False when the optimum is not a proper one (see ``message``).
    """
    x, tx, age = validate(frequency, recency, T)
    w = _mle.customer_weights(weights, len(x))
    n = int(w.sum())
    if n < MIN_CUSTOMERS:
        raise ValueError(f"BG/NBD needs at least {MIN_CUSTOMERS} customers to fit, got {n}")
    if not (w[x > 0] > 0).any():
        raise ValueError(
            "no customer has a repeat purchase (frequency > 0): BG/NBD cannot estimate purchase or drop-out rates"
        )
    (x, tx, age), w = _mle.compress([x, tx, age], w)
    scale = float(np.sum(w * age) / np.sum(w))
    if scale <= 0:
        raise ValueError("every customer has T = 0: there is no observation time to fit on")
    tx, age = tx / scale, age / scale
    total = float(w.sum())
    repeat_rate = float(np.sum(w * x) / np.sum(w * age))
    start = np.log(np.array([1.0, 1.0 / repeat_rate, 1.0, 1.0]))

    def mean_loglik(theta: FloatArray) -> tuple[float, FloatArray]:
        return _loglik(theta, x, tx, age, w, total)

    best = _mle.maximize(mean_loglik, start, total, PARAMS)
    r, alpha_scaled, a, b = (float(v) for v in best.params)
    se = best.std_errors * np.array([1.0, scale, 1.0, 1.0])
    # Back to the caller's time unit: the density of (t_x, T) picks up scale^-x per customer.
    loglik = best.log_likelihood - float(np.sum(w * x)) * np.log(scale)
    return BgNbdFit(
        r=r,
        alpha=alpha_scaled * scale,
        a=a,
        b=b,
        log_likelihood=float(loglik),
        n=n,
        converged=best.converged,
        message=best.message,
        std_errors=(float(se[0]), float(se[1]), float(se[2]), float(se[3])),
    )


def validate(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The three per-customer arrays, checked: ValueError saying what is wrong and for which customer."""
    x = _mle.as_vector("frequency", frequency)
    tx = _mle.as_vector("recency", recency)
    age = _mle.as_vector("T", T)
    _mle.same_length(frequency=x, recency=tx, T=age)
    _mle.check_counts("frequency (repeat purchases)", x)
    _mle.first_bad("recency must be >= 0", tx < 0, lambda i: f"recency {tx[i]}")
    _mle.first_bad("T must be >= 0", age < 0, lambda i: f"T {age[i]}")
    _mle.first_bad(
        "recency must be <= T (the last purchase cannot come after the end of the observation)",
        tx > age * (1 + 1e-9) + 1e-12,
        lambda i: f"recency {tx[i]}, T {age[i]}",
    )
    _mle.first_bad(
        "frequency 0 needs recency 0 (without a repeat purchase the last purchase is the first)",
        (x == 0) & (tx > 0),
        lambda i: f"recency {tx[i]}",
    )
    return x, np.minimum(tx, age), age


def _loglik(
    theta: FloatArray, x: FloatArray, tx: FloatArray, age: FloatArray, w: FloatArray, total: float
) -> tuple[float, FloatArray]:
    """Mean log-likelihood per customer and its gradient in the log-parameters.

    The gamma functions depend on the purchase count only: they are evaluated once per distinct count
    (a few hundred at most) and gathered, which keeps a fit over 100,000 histories at a few seconds.
    """
    r, alpha, a, b = np.exp(theta)
    gl, dg = special.gammaln, special.digamma
    counts, at = np.unique(x, return_inverse=True)
    at = at.reshape(-1)
    bx1 = np.where(counts > 0, b + counts - 1, 1.0)  # b+x-1 only where x > 0 (the second term exists)
    # Per distinct count: the log-gamma parts of the two terms, and the digammas of the gradient.
    part1 = (gl(r + counts) - gl(r) + r * np.log(alpha))[at]
    common = gl(a + b) - gl(b) - gl(a + b + counts)
    part2 = (common + gl(b + counts))[at]
    part3 = np.where(counts > 0, common + np.log(a) + gl(bx1), -np.inf)[at]
    dg_r = (dg(r + counts) - dg(r))[at]
    dg_abx = (dg(a + b) - dg(a + b + counts))[at]
    dg_bx, dg_bx1 = dg(b + counts)[at], np.where(counts > 0, dg(bx1), 0.0)[at]
    repeat = x > 0
    log_alpha_t, log_alpha_tx = np.log(alpha + age), np.log(alpha + tx)
    a2 = part2 - (r + x) * log_alpha_t
    a3 = part3 - (r + x) * log_alpha_tx
    both = np.logaddexp(a2, a3)
    ll = part1 + both
    w2 = np.exp(a2 - both)
    w3 = np.where(repeat, np.exp(a3 - both), 0.0)
    d_r = dg_r + np.log(alpha) - w2 * log_alpha_t - w3 * log_alpha_tx
    d_alpha = r / alpha - (r + x) * (w2 / (alpha + age) + w3 / (alpha + tx))
    d_a = dg_abx + w3 / a
    d_b = dg_abx - dg(b) + w2 * dg_bx + w3 * dg_bx1
    grads = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
    return float(np.dot(w, ll) / total), grads @ w / total


def _horizon(t: ArrayLike, n: int) -> FloatArray:
    horizon = _mle.as_vector("t", t)
    if (horizon < 0).any():
        raise ValueError("t (the horizon) must be >= 0")
    if len(horizon) == 1:
        return np.full(n, horizon[0])
    if len(horizon) != n:
        raise ValueError(f"t must be one horizon or one per customer: {len(horizon)} values for {n} customers")
    return horizon


def _replace_a(f: BgNbdFit, a: float) -> BgNbdFit:
    return BgNbdFit(f.r, f.alpha, a, f.b, f.log_likelihood, f.n, f.converged, f.message, f.std_errors)


def _json_float(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)
