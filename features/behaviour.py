"""Behaviour features per customer: orders, money, returns, rhythm, recent windows and optional-column shares.

Every function works on flat numpy arrays grouped by a customer position (0..n_customers-1); nothing
loops over customers. Definitions are stated where they are computed, since the model and the
profitability layer both rely on them.
"""

from __future__ import annotations

import numpy as np

from features.rfm import PurchaseDays

WINDOWS_DAYS = (30, 90, 180, 365)
TREND_DAYS = 90


def _group_starts(*keys: np.ndarray) -> np.ndarray:
    """Boolean mask of the first row of each run of equal keys (arrays already sorted by the keys)."""
    starts = np.ones(len(keys[0]), dtype=bool)
    if len(keys[0]):
        changed = np.zeros(len(keys[0]) - 1, dtype=bool)
        for key in keys:
            changed |= key[1:] != key[:-1]
        starts[1:] = changed
    return starts


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray, default: float = 0.0) -> np.ndarray:
    """numerator / denominator, with `default` where the denominator is not positive."""
    out = np.full(np.broadcast(numerator, denominator).shape, default, dtype=float)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def order_features(
    position: np.ndarray,
    order_key: np.ndarray,
    timestamp_ns: np.ndarray,
    amount: np.ndarray,
    n_customers: int,
    as_of_day: int,
) -> dict[str, np.ndarray]:
    """Order counts and values from purchase rows (an order = one order id, else one timestamp)."""
    order = np.lexsort((order_key, position))
    position, order_key, timestamp_ns, amount = position[order], order_key[order], timestamp_ns[order], amount[order]
    starts = np.flatnonzero(_group_starts(position, order_key))
    value = np.add.reduceat(amount, starts) if len(starts) else np.zeros(0)
    placed_ns = np.minimum.reduceat(timestamp_ns, starts) if len(starts) else np.zeros(0, dtype=np.int64)
    owner = position[starts]
    placed_day = placed_ns // 86_400_000_000_000

    count = np.bincount(owner, minlength=n_customers).astype(float)
    gross = np.bincount(owner, weights=value, minlength=n_customers)
    customer_starts = np.flatnonzero(_group_starts(owner))
    max_value = np.zeros(n_customers)
    if len(customer_starts):
        max_value[owner[customer_starts]] = np.maximum.reduceat(value, customer_starts)
    chronological = np.lexsort((placed_ns, owner))
    first_rows = chronological[_group_starts(owner[chronological])]
    first_value = np.zeros(n_customers)
    first_value[owner[first_rows]] = value[first_rows]

    features = {
        "order_count": count,
        "gross_spend": gross,
        "first_order_value": first_value,
        "max_order_value": max_value,
        "avg_order_value": _safe_ratio(gross, count),
    }
    for window in WINDOWS_DAYS:
        recent = placed_day > as_of_day - window
        features[f"orders_{window}d"] = np.bincount(owner[recent], minlength=n_customers).astype(float)
        features[f"spend_{window}d"] = np.bincount(owner[recent], weights=value[recent], minlength=n_customers)
    before = (placed_day > as_of_day - 2 * TREND_DAYS) & (placed_day <= as_of_day - TREND_DAYS)
    spend_before = np.bincount(owner[before], weights=value[before], minlength=n_customers)
    spend_last = features[f"spend_{TREND_DAYS}d"]
    # Bounded in (-1, 1): +1 all recent, -1 all in the 90 days before, 0 flat or no spend in either.
    features["spend_trend"] = _safe_ratio(spend_last - spend_before, spend_last + spend_before)
    return features


def return_features(
    position: np.ndarray, order_key: np.ndarray, amount: np.ndarray, n_customers: int, gross: np.ndarray, orders: np.ndarray
) -> dict[str, np.ndarray]:
    """Returns: count of return orders, money returned (positive), per-order rate and share of gross spend."""
    order = np.lexsort((order_key, position))
    starts = _group_starts(position[order], order_key[order])
    return_count = np.bincount(position[order][starts], minlength=n_customers).astype(float)
    return_amount = np.bincount(position, weights=-amount, minlength=n_customers)
    return {
        "return_count": return_count,
        "return_amount": return_amount,
        "net_spend": gross - return_amount,
        "return_rate": _safe_ratio(return_count, orders),
        "return_value_share": _safe_ratio(return_amount, gross),
    }


def rhythm_features(days: PurchaseDays, as_of_day: int) -> dict[str, np.ndarray]:
    """Inter-purchase gaps between purchase days, days since last purchase, tenure and the overdue ratio.

    gap_mean = (last - first purchase day) / repeat days; gap_std is the population standard
    deviation of the gaps; gap_trend = last gap / gap_mean (1 = on rhythm). With no repeat purchase
    these are undefined: gap_mean and gap_std are 0 and gap_trend is 1, and `frequency` tells the
    model which customers these are. overdue_ratio = days_since_last / gap_mean; for one-time
    buyers gap_mean is replaced by the median gap_mean of repeat customers (the population's rhythm,
    1 day at least), so the ratio is defined for everyone.
    """
    n = len(days.first)
    last = days.first + days.count - 1
    first_day = days.day[days.first]
    last_day = days.day[last]
    repeats = (days.count - 1).astype(float)
    owner = np.repeat(np.arange(n), days.count)
    gaps = np.diff(days.day).astype(float)
    within = owner[1:] == owner[:-1]
    gap_owner, gaps = owner[1:][within], gaps[within]
    gap_mean = _safe_ratio((last_day - first_day).astype(float), repeats)
    mean_square = _safe_ratio(np.bincount(gap_owner, weights=gaps**2, minlength=n), repeats)
    gap_std = np.sqrt(np.clip(mean_square - gap_mean**2, 0.0, None))
    last_gap = np.zeros(n)
    has_gap = days.count >= 2
    last_gap[has_gap] = (days.day[last] - days.day[np.maximum(last - 1, 0)])[has_gap]
    gap_trend = np.where(has_gap, _safe_ratio(last_gap, gap_mean, default=1.0), 1.0)
    days_since_last = (as_of_day - last_day).astype(float)
    typical_gap = float(np.median(gap_mean[has_gap])) if has_gap.any() else 1.0
    rhythm = np.where(has_gap, gap_mean, max(typical_gap, 1.0))
    return {
        "days_since_last": days_since_last,
        "tenure_days": (as_of_day - first_day).astype(float),
        "gap_mean": gap_mean,
        "gap_std": gap_std,
        "gap_trend": gap_trend,
        "overdue_ratio": _safe_ratio(days_since_last, np.maximum(rhythm, 1.0)),
    }


def optional_features(
    position: np.ndarray,
    amount: np.ndarray,
    n_customers: int,
    gross: np.ndarray,
    discount: np.ndarray | None = None,
    promo: np.ndarray | None = None,
    category: np.ndarray | None = None,
    cost: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Shares from optional columns of purchase rows; a feature is absent when its column is.

    discount_share = money given off / (paid + given off); promo_share = share of spend bought on
    promotion; n_categories and top_category_share = spend share of the customer's top category;
    margin_rate = (spend - cost) / spend over rows that carry a cost (the data set's overall margin
    for a customer none of whose rows do).
    """
    features: dict[str, np.ndarray] = {}
    if discount is not None:
        given = np.bincount(position, weights=discount, minlength=n_customers)
        features["discount_share"] = _safe_ratio(given, gross + given)
    if promo is not None:
        promo_spend = np.bincount(position[promo], weights=amount[promo], minlength=n_customers)
        features["promo_share"] = _safe_ratio(promo_spend, gross)
    if category is not None:
        order = np.lexsort((category, position))
        starts = np.flatnonzero(_group_starts(position[order], category[order]))
        spend = np.add.reduceat(amount[order], starts) if len(starts) else np.zeros(0)
        owner = position[order][starts]
        features["n_categories"] = np.bincount(owner, minlength=n_customers).astype(float)
        top = np.zeros(n_customers)
        owner_starts = np.flatnonzero(_group_starts(owner))
        if len(owner_starts):
            top[owner[owner_starts]] = np.maximum.reduceat(spend, owner_starts)
        features["top_category_share"] = _safe_ratio(top, gross)
    if cost is not None:
        known = np.isfinite(cost)
        spend_known = np.bincount(position[known], weights=amount[known], minlength=n_customers)
        cost_known = np.bincount(position[known], weights=cost[known], minlength=n_customers)
        overall = float(_safe_ratio(np.array(spend_known.sum() - cost_known.sum()), np.array(spend_known.sum())))
        features["margin_rate"] = _safe_ratio(spend_known - cost_known, spend_known, default=overall)
    return features
