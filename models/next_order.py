"""Time to a customer's next purchase: from the purchase model and the customer's own gaps.

The purchase model's part: for an alive customer of the BG/NBD family (and the Pareto/NBD) with `x`
repeat purchases over `T` time units, the purchase rate is Gamma(r + x, alpha + T) a posteriori, so
P(no purchase within t | alive) = ((alpha + T) / (alpha + T + t)) ** (r + x) and its median is

    t_model = (alpha + T) * (2 ** (1 / (r + x)) - 1)      (Fader, Hardie & Lee 2005, eq. 8's posterior)

counted from the as-of day (the model is memoryless). The customer's own part: the usual gap
(`(last - first purchase day) / repeat purchase days`) minus the days already waited, at least 0.
The two are averaged with weight x / (x + own_gap_prior_orders) on the own gaps: a customer with many
regular purchases is predicted by their rhythm, a one-time buyer by the model alone.

`benchmarks/bench_rhythm.py` measures the result against the last gap, the mean gap and the shop's
median gap on the holdout of the out-of-time design (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import numpy as np

from core import defaults
from models.clv import CLVModel


def model_days_to_next_order(clv_model: CLVModel, frequency: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Median days from the as-of day to the next purchase of an alive customer, by the purchase model."""
    params = clv_model.params_
    shape = params["r"] + np.asarray(frequency, dtype=float)
    scale = params["alpha"] + np.asarray(T, dtype=float)
    with np.errstate(over="ignore"):
        units = scale * np.expm1(np.log(2.0) / shape)
    return units * clv_model.time_unit_days


def usual_gap_days(frequency: np.ndarray, recency: np.ndarray, time_unit_days: int) -> np.ndarray:
    """Mean days between purchase days ((last - first) / repeats); NaN without a repeat purchase."""
    frequency = np.asarray(frequency, dtype=float)
    span = np.asarray(recency, dtype=float) * time_unit_days
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(frequency >= 1, span / np.maximum(frequency, 1.0), np.nan)


def days_to_next_order(
    clv_model: CLVModel,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    days_since_last: np.ndarray,
    own_gap_prior_orders: float = defaults.OWN_GAP_PRIOR_ORDERS,
) -> np.ndarray:
    """Predicted days from the as-of day to the next purchase (>= 1): model and own gaps blended."""
    frequency = np.asarray(frequency, dtype=float)
    model_days = model_days_to_next_order(clv_model, frequency, T)
    own_gap = usual_gap_days(frequency, recency, clv_model.time_unit_days)
    own_days = np.maximum(np.nan_to_num(own_gap) - np.asarray(days_since_last, dtype=float), 0.0)
    weight = frequency / (frequency + own_gap_prior_orders) if own_gap_prior_orders > 0 else (frequency >= 1) * 1.0
    blended = (1.0 - weight) * model_days + weight * own_days
    return np.maximum(np.nan_to_num(blended, nan=1.0, posinf=1e6), 1.0)
