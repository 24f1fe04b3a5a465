"""Behaviour features per customer: orders, money, returns, rhythm, recent windows and optional-column shares.

Every function works on flat numpy arrays sorted by customer code then time (see
`features.customer_rows`) and returns one array per feature, indexed by customer code; nothing loops
over customers. Definitions are stated where they are computed, since the models and the
profitability layer rely on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.units import NS_PER_DAY
from features.rfm import PurchaseDays, run_starts

WINDOWS_DAYS = (30, 90, 180, 365)
TREND_DAYS = 90


@dataclass(frozen=True)
class Orders:
    """One entry per order, sorted by customer code then the time the order was placed.

    An order is one distinct `order_id` of a customer (rows without an order id: one distinct
    timestamp); when the log has no `order_id` column, one distinct timestamp.
    """

    owner: np.ndarray  # int64 customer code
    value: np.ndarray  # float64 sum of the order's amounts
    placed_ns: np.ndarray  # int64 earliest timestamp of the order's rows


def safe_ratio(numerator: np.ndarray, denominator: np.ndarray, default: float = 0.0) -> np.ndarray:
    """numerator / denominator, with `default` where the denominator is not positive."""
    numerator, denominator = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    out = np.full(np.broadcast(numerator, denominator).shape, default, dtype=float)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def group_orders(
    code: np.ndarray, timestamp_ns: np.ndarray, amount: np.ndarray, order_id: pa.ChunkedArray | None
) -> Orders:
    """Group rows sorted by (customer, time) into orders (see `Orders`).

    Without order ids, an order is a run of equal timestamps. With them, consecutive rows sharing an
    id form a run; when each customer's runs carry strictly increasing ids (ids issued in time order,
    as invoice numbers are) the runs are the distinct orders. Otherwise the ids are factorised and the
    rows regrouped, which is exact for any log but slower.
    """
    if order_id is None:
        starts = np.flatnonzero(run_starts(code, timestamp_ns))
        return _orders_from_runs(code, timestamp_ns, amount, starts)
    if order_id.null_count == 0 and len(code) > 1:
        changed = pc.not_equal(order_id[1:], order_id[:-1]).to_numpy(zero_copy_only=False)
        starts_mask = run_starts(code)
        starts_mask[1:] |= changed
        starts = np.flatnonzero(starts_mask)
        run_ids = order_id.take(pa.array(starts))
        increasing = pc.less(run_ids[:-1], run_ids[1:]).to_numpy(zero_copy_only=False)
        same_customer = code[starts][1:] == code[starts][:-1]
        if np.all(increasing | ~same_customer):
            return _orders_from_runs(code, timestamp_ns, amount, starts)
    key, _ = pd.factorize(pd.Series(pd.arrays.ArrowExtensionArray(order_id)), sort=False)
    key = key.astype(np.int64)
    missing = key < 0
    if missing.any():
        # Rows without an order id: one order per distinct timestamp.
        stamp_key, _ = pd.factorize(timestamp_ns[missing], sort=False)
        key[missing] = key.max(initial=-1) + 1 + stamp_key
    regroup = np.lexsort((timestamp_ns, key, code))
    code, key, stamp, amount = code[regroup], key[regroup], timestamp_ns[regroup], amount[regroup]
    starts = np.flatnonzero(run_starts(code, key))
    orders = _orders_from_runs(code, stamp, amount, starts)
    chronological = np.lexsort((orders.placed_ns, orders.owner))
    return Orders(orders.owner[chronological], orders.value[chronological], orders.placed_ns[chronological])


def _orders_from_runs(code: np.ndarray, stamp: np.ndarray, amount: np.ndarray, starts: np.ndarray) -> Orders:
    """Orders from the start rows of runs sorted by time within each run."""
    value = np.add.reduceat(amount, starts) if len(starts) else np.zeros(0)
    return Orders(owner=code[starts], value=value, placed_ns=stamp[starts])


def order_features(orders: Orders, n_customers: int, as_of: int) -> dict[str, np.ndarray]:
    """Orders and money from purchase orders on or before `as_of` (whole days since the epoch).

    order_count = purchase orders; gross_spend = their money; first_order_value = money of the
    earliest order (the mean when several share its timestamp); max_order_value = money of the
    largest order; avg_order_value =
    gross_spend / order_count. orders_Nd and spend_Nd count the orders placed in the last N days
    (as_of - N < day <= as_of) and their money. spend_trend = (spend of the last 90 days - spend
    of the 90 days before) / (their sum + 1): in (-1, 1), 0 when flat or when both are zero.
    """
    count = np.bincount(orders.owner, minlength=n_customers).astype(float)
    gross = np.bincount(orders.owner, weights=orders.value, minlength=n_customers)
    starts = run_starts(orders.owner)
    first = np.flatnonzero(starts)
    max_value = np.zeros(n_customers)
    if len(first):
        max_value[orders.owner[first]] = np.maximum.reduceat(orders.value, first)
    # Orders placed at the very first moment (several only when they share the timestamp): their mean.
    opening = orders.placed_ns == orders.placed_ns[first][np.cumsum(starts) - 1] if len(first) else starts
    first_value = safe_ratio(
        np.bincount(orders.owner[opening], weights=orders.value[opening], minlength=n_customers),
        np.bincount(orders.owner[opening], minlength=n_customers),
    )
    placed_day = orders.placed_ns // NS_PER_DAY
    features = {
        "order_count": count,
        "gross_spend": gross,
        "first_order_value": first_value,
        "max_order_value": max_value,
        "avg_order_value": safe_ratio(gross, count),
    }
    for window in WINDOWS_DAYS:
        recent = placed_day > as_of - window
        features[f"orders_{window}d"] = np.bincount(orders.owner[recent], minlength=n_customers).astype(float)
        features[f"spend_{window}d"] = np.bincount(
            orders.owner[recent], weights=orders.value[recent], minlength=n_customers
        )
    before = (placed_day > as_of - 2 * TREND_DAYS) & (placed_day <= as_of - TREND_DAYS)
    spend_before = np.bincount(orders.owner[before], weights=orders.value[before], minlength=n_customers)
    spend_last = features[f"spend_{TREND_DAYS}d"]
    features["spend_trend"] = (spend_last - spend_before) / (spend_last + spend_before + 1.0)
    return features


def return_features(
    returns: Orders, gross: np.ndarray, order_count: np.ndarray, n_customers: int
) -> dict[str, np.ndarray]:
    """Returns on or before `as_of`, grouped into return orders like purchases (`group_orders`).

    return_count = return orders (a cancelled invoice of many lines is one return);
    return_amount = money returned, positive; net_spend = gross_spend - return_amount;
    return_rate = return_count / order_count; return_value_share = return_amount / gross_spend.
    """
    return_count = np.bincount(returns.owner, minlength=n_customers).astype(float)
    return_amount = np.bincount(returns.owner, weights=-returns.value, minlength=n_customers)
    return {
        "net_spend": gross - return_amount,
        "return_count": return_count,
        "return_amount": return_amount,
        "return_rate": safe_ratio(return_count, order_count),
        "return_value_share": safe_ratio(return_amount, gross),
    }


def rhythm_features(days: PurchaseDays, as_of: int) -> dict[str, np.ndarray]:
    """Inter-purchase gaps between distinct purchase days (per customer in `days.customers` order).

    days_since_last = as_of - last purchase day; tenure_days = as_of - first purchase day (T in
    days). gap_mean = (last - first purchase day) / repeat purchase days and gap_std its population
    standard deviation; gap_trend = last gap / gap_mean (1 = on rhythm, > 1 slowing down).
    overdue_ratio = days_since_last / gap_mean: how many usual gaps the customer has been away.
    gap_last = days between the last two purchase days; gap_previous = the gap before it;
    overdue_longest_ratio = days_since_last / the longest gap: past 1, the customer has been away
    longer than ever before.
    The waits count the current one (days_since_last) as a gap, so a purchase on the as-of day can
    only shorten them or leave them: recent_wait_days = the longer of the current wait and the last
    gap; longest_wait_days = the longest of every gap and the current wait (a purchase today turns
    the current wait into a gap of the same length, so it stays); avg_wait_days = tenure_days /
    purchase days, the mean wait counting the current one. They need no sentinel: a customer with one
    purchase day has waited days_since_last.
    Without a repeat purchase no gap was observed: gap_mean, gap_std and gap_last are 0 and gap_trend
    is 1 (`frequency` = 0 tells a model which customers these are), and both overdue ratios use the
    customer's own tenure as its gap (the wait so far is a lower bound of the first gap), which
    makes them 1, or 0 for a first purchase on the as-of day. gap_previous is 0 below three purchase
    days (`frequency` < 2). Every value is per customer: a row never depends on the other customers
    in the log.
    """
    n = len(days.first)
    last = days.first + days.count - 1
    first_day = days.day[days.first]
    last_day = days.day[last]
    repeats = (days.count - 1).astype(float)
    gaps = np.diff(days.day).astype(float)
    within = days.customer[1:] == days.customer[:-1]
    owner = np.repeat(np.arange(n), days.count)[1:][within]
    gaps = gaps[within]
    gap_mean = safe_ratio((last_day - first_day).astype(float), repeats)
    mean_square = safe_ratio(np.bincount(owner, weights=gaps**2, minlength=n), repeats)
    gap_std = np.sqrt(np.clip(mean_square - gap_mean**2, 0.0, None))
    has_gap = days.count >= 2
    # Indices are clipped into the array; the `where` masks drop what they read for short histories.
    last_gap = np.where(has_gap, days.day[last] - days.day[np.maximum(last - 1, 0)], 0).astype(float)
    previous_gap = np.where(
        days.count >= 3, days.day[np.maximum(last - 1, 0)] - days.day[np.maximum(last - 2, 0)], 0
    ).astype(float)
    longest_gap = np.zeros(n)
    gap_starts = np.flatnonzero(run_starts(owner))
    if len(gap_starts):
        longest_gap[owner[gap_starts]] = np.maximum.reduceat(gaps, gap_starts)
    days_since_last = (as_of - last_day).astype(float)
    tenure = (as_of - first_day).astype(float)
    usual_gap = np.where(has_gap, gap_mean, tenure)
    return {
        "days_since_last": days_since_last,
        "tenure_days": tenure,
        "gap_mean": gap_mean,
        "gap_std": gap_std,
        "overdue_ratio": safe_ratio(days_since_last, usual_gap),
        "gap_trend": np.where(has_gap, safe_ratio(last_gap, gap_mean, default=1.0), 1.0),
        "gap_last": last_gap,
        "gap_previous": previous_gap,
        "overdue_longest_ratio": safe_ratio(days_since_last, np.where(has_gap, longest_gap, tenure)),
        "recent_wait_days": np.maximum(days_since_last, last_gap),
        "longest_wait_days": np.maximum(days_since_last, longest_gap),
        "avg_wait_days": tenure / days.count,
    }


def optional_features(
    code: np.ndarray,
    amount: np.ndarray,
    gross: np.ndarray,
    n_customers: int,
    discount: np.ndarray | None = None,
    promo: np.ndarray | None = None,
    category: np.ndarray | None = None,
    cost: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Shares from optional columns over purchase rows on or before as_of; absent column, absent feature.

    discount_share = money given off / (money paid + given off); promo_share = share of gross
    spend bought on promotion; n_categories = distinct categories bought; top_category_share =
    spend share of the customer's top category (0 without categories); margin_rate = (spend -
    cost) / spend over the rows that carry a cost, missing (NaN) for a customer none of whose rows
    do (the CLV model then uses its configured margin rate).
    """
    features: dict[str, np.ndarray] = {}
    if discount is not None:
        given = np.bincount(code, weights=np.abs(np.nan_to_num(discount)), minlength=n_customers)
        features["discount_share"] = safe_ratio(given, gross + given)
    if promo is not None:
        promo_spend = np.bincount(code[promo], weights=amount[promo], minlength=n_customers)
        features["promo_share"] = safe_ratio(promo_spend, gross)
    if category is not None:
        known = category >= 0
        n_levels = int(category.max(initial=-1)) + 1
        pair = code[known] * max(n_levels, 1) + category[known]
        width = max(n_levels, 1)
        if n_customers * width <= 10_000_000:
            cells = n_customers * width
            spend = np.bincount(pair, weights=amount[known], minlength=cells).reshape(n_customers, width)
            bought = np.bincount(pair, minlength=cells).reshape(n_customers, width)
            features["n_categories"] = np.count_nonzero(bought, axis=1).astype(float)
            top = spend.max(axis=1, initial=0.0)
        else:
            key, inverse = np.unique(pair, return_inverse=True)
            spend = np.bincount(inverse, weights=amount[known], minlength=len(key))
            owner = key // n_levels
            features["n_categories"] = np.bincount(owner, minlength=n_customers).astype(float)
            top = np.zeros(n_customers)
            np.maximum.at(top, owner, spend)
        features["top_category_share"] = safe_ratio(top, gross)
    if cost is not None:
        known = np.isfinite(cost)
        spend_known = np.bincount(code[known], weights=amount[known], minlength=n_customers)
        cost_known = np.bincount(code[known], weights=cost[known], minlength=n_customers)
        # No cost known: missing, so the CLV model uses its configured margin. A fill from the whole
        # log would make one customer's value depend on which other customers are in the batch.
        features["margin_rate"] = safe_ratio(spend_known - cost_known, spend_known, default=np.nan)
    return features
