"""Shared maximum-likelihood machinery of the lifetime-value models.

Input checks that say what is wrong and where, compression of identical rows into weights, and a
maximizer over log-parameters (so every parameter stays positive) that reports honestly whether it
converged, with standard errors from the observed information (the numerical Hessian of the
log-likelihood in the log-parameters, by central differences of the analytic gradient).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

FloatArray = NDArray[np.float64]
# The log-parameters are kept inside +-LOG_BOUND; an optimum within LOG_MARGIN of it is "at the boundary": the
# data do not identify that parameter (it runs off to 0 or infinity) and the fit is not called converged.
LOG_BOUND = 14.0
LOG_MARGIN = 1.0
# The mean log-likelihood's gradient (per customer, in the log-parameters) must be this small at a converged optimum.
GRADIENT_TOLERANCE = 1e-5


def as_vector(name: str, values: ArrayLike) -> FloatArray:
    """``values`` as a 1-D float array; ValueError naming ``name`` when not finite."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one value per customer (a 1-D array), got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name} must be finite: {int(bad.sum())} value(s) are not (first at index {i}: {arr[i]})")
    return arr


def same_length(**arrays: FloatArray) -> int:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"one value per customer in each array, got lengths {lengths}")
    return next(iter(lengths.values()))


def first_bad(name: str, bad: NDArray[np.bool_], detail: Callable[[int], str]) -> None:
    """ValueError when any of ``bad``: how many, and the first one described by ``detail(index)``."""
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}: {int(bad.sum())} customer(s), first at index {i} ({detail(i)})")


def check_counts(name: str, arr: FloatArray) -> None:
    first_bad(f"{name} must be a whole number >= 0", (arr < 0) | (arr != np.floor(arr)), lambda i: f"{arr[i]}")


def compress(columns: list[FloatArray], weights: FloatArray) -> tuple[list[FloatArray], FloatArray]:
    """Identical rows of ``columns`` merged into one row each, with their weights summed (zero weights dropped)."""
    keep = weights > 0
    stacked = np.column_stack([c[keep] for c in columns])
    unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
    summed = np.bincount(inverse.reshape(-1), weights=weights[keep], minlength=len(unique)).astype(np.float64)
    return [np.ascontiguousarray(unique[:, j]) for j in range(unique.shape[1])], summed


def customer_weights(weights: ArrayLike | None, n: int) -> FloatArray:
    if weights is None:
        return np.ones(n)
    w = as_vector("weights", weights)
    if len(w) != n:
        raise ValueError(f"weights must have one value per customer: {len(w)} weights for {n} customers")
    check_counts("weights (the number of customers sharing a row)", w)
    return w


@dataclass(frozen=True)
class Maximum:
    """Where the maximizer ended: the parameters (natural scale), the total log-likelihood, and its verdict."""

    params: FloatArray
    log_likelihood: float
    converged: bool
    message: str
    std_errors: FloatArray  # natural scale, by the delta method; nan when the information matrix is not invertible


def maximize(
    mean_loglik: Callable[[FloatArray], tuple[float, FloatArray]],
    start: FloatArray,
    total_weight: float,
    names: tuple[str, ...],
) -> Maximum:
    """Maximize ``mean_loglik(log_params) -> (mean log-likelihood, its gradient)`` over the log-parameters.

    L-BFGS-B with the analytic gradient from ``start``; when that does not end at a proper optimum (other than
    one at the boundary), Nelder-Mead from the same start and L-BFGS-B again from where it stopped, keeping the
    better one. Converged means: the gradient is ~0, no parameter sits at the boundary, and the information
    matrix is positive definite (the parameters are identified).
    """

    def neg(theta: FloatArray) -> tuple[float, FloatArray]:
        value, grad = mean_loglik(theta)
        if not np.isfinite(value):
            return 1e300, np.zeros_like(theta)
        return -value, -grad

    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    opts = {"maxiter": 500, "ftol": 1e-15, "gtol": 1e-10}
    best = optimize.minimize(neg, start, jac=True, method="L-BFGS-B", bounds=bounds, options=opts)
    verdict = _verdict(mean_loglik, best, total_weight, names)
    # A run to the boundary is the data's answer (the supremum is not attained), not the optimizer's failure.
    at_bound = bool(np.any(np.abs(best.x) > LOG_BOUND - LOG_MARGIN))
    if not verdict[0] and not at_bound:
        nm = optimize.minimize(
            lambda th: neg(th)[0],
            start,
            method="Nelder-Mead",
            bounds=bounds,
            options={"maxiter": 4000, "xatol": 1e-8, "fatol": 1e-12},
        )
        polished = optimize.minimize(neg, nm.x, jac=True, method="L-BFGS-B", bounds=bounds, options=opts)
        if polished.fun < best.fun:
            best = polished
            verdict = _verdict(mean_loglik, best, total_weight, names)
    converged, message, std_log = verdict
    theta = np.asarray(best.x, dtype=np.float64)
    params = np.exp(theta)
    return Maximum(params, float(-best.fun * total_weight), converged, message, params * std_log)


def _verdict(
    mean_loglik: Callable[[FloatArray], tuple[float, FloatArray]],
    result: optimize.OptimizeResult,
    total_weight: float,
    names: tuple[str, ...],
) -> tuple[bool, str, FloatArray]:
    theta = np.asarray(result.x, dtype=np.float64)
    nan = np.full(len(theta), np.nan)
    if not np.isfinite(result.fun) or result.fun >= 1e299:
        return False, "the log-likelihood is not finite at the optimizer's end point", nan
    at_bound = np.abs(theta) > LOG_BOUND - LOG_MARGIN
    hessian = _hessian(mean_loglik, theta) * total_weight
    std_log = nan
    info_ok = False
    if np.all(np.isfinite(hessian)):
        try:
            np.linalg.cholesky(-hessian)
            std_log = np.sqrt(np.diag(np.linalg.inv(-hessian)))
            info_ok = True
        except np.linalg.LinAlgError:
            pass
    grad = mean_loglik(theta)[1]
    if at_bound.any():
        which = ", ".join(names[i] for i in np.flatnonzero(at_bound))
        return False, f"{which} ran to the boundary: the data do not identify them", std_log
    if not np.all(np.abs(grad) < GRADIENT_TOLERANCE):
        # (An optimizer's "abnormal" line-search end with a ~0 gradient is float precision at the optimum.)
        stop = "" if result.success else f"; the optimizer stopped: {result.message}"
        return False, f"the gradient is not ~0 at the end point (max {np.max(np.abs(grad)):.2g}){stop}", std_log
    if not info_ok:
        return False, "the information matrix is not positive definite: the parameters are not identified", std_log
    return True, "converged", std_log


def _hessian(mean_loglik: Callable[[FloatArray], tuple[float, FloatArray]], theta: FloatArray) -> FloatArray:
    k = len(theta)
    h = np.empty((k, k))
    step = 1e-5
    for j in range(k):
        e = np.zeros(k)
        e[j] = step
        h[j] = (mean_loglik(theta + e)[1] - mean_loglik(theta - e)[1]) / (2 * step)
    return (h + h.T) / 2
