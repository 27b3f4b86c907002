"""How well a BG/NBD fit predicts: the calibration period against a holdout period.

Fit the model on what customers did up to a cut-off (the calibration period), predict each customer's
purchases in the next ``holdout_length`` time units, and compare with what they did (Fader, Hardie and Lee
2005, the figure of conditional expectations by calibration frequency). :func:`compare` takes per-customer
arrays only -- calibration ``frequency``, ``recency`` and ``T`` (the same definitions as for BG/NBD) and the
number of purchases each made in the holdout -- and returns:

* per group of calibration frequency (0, 1, ..., 6 and "7+" by default): customers, actual and predicted
  purchases per customer and in total;
* overall: actual and predicted totals, their ratio (predicted / actual: 1 is perfect, above 1 overforecast),
  the mean absolute error per customer and its root mean square;
* ``unconditional_total``: the purchases the model expects of customers of these ages ignoring their
  individual histories (new-customer expectation E[X(T + t)] - E[X(T)] summed), a check of the population
  level fit independent of the conditional expectations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cdp_profiles.analytics import _mle
from cdp_profiles.analytics.bgnbd import BgNbdFit, validate


@dataclass(frozen=True)
class HoldoutGroup:
    label: str  # "0", "1", ..., "7+"
    customers: int
    actual_mean: float
    predicted_mean: float
    actual_total: float
    predicted_total: float


@dataclass(frozen=True)
class HoldoutComparison:
    customers: int
    holdout_length: float | None  # None when it differs between customers
    groups: tuple[HoldoutGroup, ...]
    actual_total: float
    predicted_total: float
    ratio: float | None  # predicted / actual total; None when nobody bought in the holdout
    mae: float  # mean absolute error per customer
    rmse: float
    unconditional_total: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["groups"] = [asdict(g) for g in self.groups]
        return d


def compare(
    fit: BgNbdFit,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    holdout_purchases: ArrayLike,
    holdout_length: ArrayLike,
    *,
    top_group: int = 7,
) -> HoldoutComparison:
    """Predicted against actual holdout purchases, per calibration-frequency group and overall.

    ``holdout_length`` is the holdout's length in the fit's time unit: one value, or one per customer (when
    the holdout ends at the same date for all, it is the same for all). ``top_group`` is the first frequency
    pooled with all higher ones.
    """
    x, tx, age = validate(frequency, recency, T)
    actual = _mle.as_vector("holdout_purchases", holdout_purchases)
    _mle.same_length(frequency=x, holdout_purchases=actual)
    _mle.check_counts("holdout_purchases", actual)
    if len(x) == 0:
        raise ValueError("no customers to compare")
    if top_group < 1:
        raise ValueError(f"top_group must be >= 1, got {top_group}")
    lengths = _mle.as_vector("holdout_length", holdout_length)
    _mle.first_bad("holdout_length must be > 0", lengths <= 0, lambda i: f"holdout_length {lengths[i]}")
    predicted = fit.expected_purchases(lengths if len(lengths) > 1 else float(lengths[0]), x, tx, age)
    per_customer = np.broadcast_to(lengths, x.shape)
    future = np.asarray(fit.expected_purchases_new(age + per_customer)) - np.asarray(fit.expected_purchases_new(age))
    group_of = np.minimum(x, top_group).astype(np.int64)
    groups = []
    for k in range(top_group + 1):
        members = group_of == k
        count = int(members.sum())
        label = f"{k}+" if k == top_group else str(k)
        act, pred = float(actual[members].sum()), float(predicted[members].sum())
        groups.append(
            HoldoutGroup(
                label=label,
                customers=count,
                actual_mean=act / count if count else float("nan"),
                predicted_mean=pred / count if count else float("nan"),
                actual_total=act,
                predicted_total=pred,
            )
        )
    error = predicted - actual
    actual_total, predicted_total = float(actual.sum()), float(predicted.sum())
    return HoldoutComparison(
        customers=len(x),
        holdout_length=float(lengths[0]) if np.all(lengths == lengths[0]) else None,
        groups=tuple(groups),
        actual_total=actual_total,
        predicted_total=predicted_total,
        ratio=predicted_total / actual_total if actual_total > 0 else None,
        mae=float(np.mean(np.abs(error))),
        rmse=float(np.sqrt(np.mean(error**2))),
        unconditional_total=float(future.sum()),
    )
