"""Time to a customer's next purchase: the purchase model says whether one is expected, the gaps when.

`expected_next_order_date` is the last purchase day plus the customer's usual gap shrunk towards the
shop's median gap, as if the shop had added `own_gap_prior_orders` gaps of its median to the
customer's own (a one-time buyer gets the shop's median gap), at least one day after the as-of day;
it is empty when the purchase model's P(alive) is below `p_alive_floor` (`targeting.timing`).

Why not the purchase model's own timing: for an alive customer of the BG/NBD family with `x` repeat
purchases over `T`, the rate is Gamma(r + x, alpha + T) a posteriori, so the median wait from the
as-of day is `(alpha + T) * (2 ** (1 / (r + x)) - 1)` (`model_days_to_next_order`). On the holdout of
the out-of-time design it errs more than the gap rules on CDNOW, Online Retail and generated data
(median absolute error 59 / 50 / 32 days against 31 / 21 / 23 for the shrunk gap; blends of the two
lie in between): `benchmarks/bench_rhythm.py`, benchmarks/RESULTS.md.

Here too, because `targeting` imports nothing from `models`: `marketing_columns`, the scores' tags,
rhythm and contact-date columns that `PatronScorer.score` adds, and `shop_reference`, the shop's own
distribution behind them, learned at training and saved with the scorer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from core import defaults
from features.repurchase import repurchase_cycles
from features.tags import event_days, join_tags, product_first_sales, shop_cut_points, tag_flags
from models.clv import CLVModel
from targeting.policy import TargetingPolicy
from targeting.profitability import NEGATIVE_NET_VALUE
from targeting.timing import recommended_contact_offsets

MARKETING_COLUMNS = ("tags", "avg_days_between_orders", "expected_next_order_date", "recommended_contact_date")
SHOP_MEDIAN_GAP = "median_gap_days"
"""Key of the shop's median gap between purchase days in the scorer's `shop_reference`."""


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
    frequency: np.ndarray,
    usual_gap: np.ndarray,
    days_since_last: np.ndarray,
    shop_gap: float,
    own_gap_prior_orders: float = defaults.OWN_GAP_PRIOR_ORDERS,
) -> np.ndarray:
    """Predicted days from the as-of day to the next purchase (>= 1): the usual gap shrunk to the shop's."""
    frequency = np.asarray(frequency, dtype=float)
    own = np.where(frequency >= 1, np.nan_to_num(np.asarray(usual_gap, dtype=float)), 0.0)
    shop = shop_gap if np.isfinite(shop_gap) else 0.0
    total = frequency + own_gap_prior_orders
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.where(total > 0, (frequency * own + own_gap_prior_orders * shop) / total, own)
    ahead = gap - np.asarray(days_since_last, dtype=float)
    return np.maximum(np.nan_to_num(ahead, nan=1.0, posinf=1e6), 1.0)


def shop_median_gap(frequency: np.ndarray, recency: np.ndarray, time_unit_days: int) -> float:
    """The shop's median usual gap over its repeat buyers (NaN without any)."""
    gaps = usual_gap_days(frequency, recency, time_unit_days)
    gaps = gaps[np.isfinite(gaps)]
    return float(np.median(gaps)) if len(gaps) else float("nan")


def _days(as_of: pd.Timestamp, offsets: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """as_of + round(offsets) days as datetime64[ns], NaT where not `keep`."""
    whole = np.round(np.where(keep, offsets, 0.0)).astype("timedelta64[D]")
    dates = np.datetime64(as_of.to_datetime64(), "D") + whole
    return np.where(keep, dates.astype("datetime64[ns]"), np.datetime64("NaT", "ns"))


def marketing_columns(
    values: Mapping[str, np.ndarray],
    decisions: Mapping[str, Any],
    clv_model: CLVModel,
    policy: TargetingPolicy,
    as_of: pd.Timestamp,
    cut_points: Mapping[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """MARKETING_COLUMNS for scored customers: tags from the features, the rhythm, the contact date.

    `values` holds the feature columns and the model outputs (p_alive) as float arrays, row for row;
    `cut_points` the model's learned tag cut points and shop median gap (None: from these customers).
    """
    frequency = np.asarray(values["frequency"], dtype=float)
    days_since_last = np.asarray(values["days_since_last"], dtype=float)
    unit = clv_model.time_unit_days
    usual_gap = usual_gap_days(frequency, values["recency"], unit)
    expected = np.asarray(values["p_alive"], dtype=float) >= policy.p_alive_floor
    cuts = dict(cut_points or {})
    shop_gap = cuts.get(SHOP_MEDIAN_GAP, shop_median_gap(frequency, values["recency"], unit))
    ahead = days_to_next_order(frequency, usual_gap, days_since_last, shop_gap, policy.own_gap_prior_orders)
    contact = recommended_contact_offsets(frequency, days_since_last, usual_gap, shop_gap, policy)
    reachable = expected & (np.asarray(decisions["exclude_reason"], dtype=object) != NEGATIVE_NET_VALUE)
    return {
        "tags": join_tags(tag_flags(values, policy, cuts), len(frequency)),
        "avg_days_between_orders": usual_gap,
        "expected_next_order_date": _days(as_of, ahead, expected),
        "recommended_contact_date": _days(as_of, contact, reachable),
    }


def shop_reference(
    features: pd.DataFrame,
    policy: TargetingPolicy,
    time_unit_days: int,
    transactions: pd.DataFrame | None = None,
    as_of: Any = None,
) -> dict[str, Any]:
    """The shop's own distribution behind tags and timing (learned at training, saved with the model):
    the relative tags' cut points, the median gap between purchase days and, from the rows up to
    `as_of` when given, the category cycles, event days and products' first sale days."""
    cuts = shop_cut_points(features, policy)
    frequency = features["frequency"].to_numpy(dtype=float)
    cuts[SHOP_MEDIAN_GAP] = shop_median_gap(frequency, features["recency"].to_numpy(dtype=float), time_unit_days)
    reference: dict[str, Any] = {key: value for key, value in cuts.items() if np.isfinite(value)}
    if transactions is None or as_of is None:
        return reference
    end = pd.Timestamp(as_of).normalize()
    rows = transactions[transactions["timestamp"] < end + pd.Timedelta(days=1)]
    reference["reference_end"] = end.date().isoformat()
    if "category" in rows.columns:
        cycles = repurchase_cycles(rows, end).dropna(subset=["median_days"])
        reference["category_cycles"] = dict(zip(cycles["category"].astype(str), cycles["median_days"].astype(float), strict=True))
    if "promo" in rows.columns:
        reference["event_days"] = [day.date().isoformat() for day in event_days(rows, policy)]
    if "product_id" in rows.columns:
        first = product_first_sales(rows)
        reference["product_first_sale"] = {str(k): v.date().isoformat() for k, v in first.items()}
    return reference
