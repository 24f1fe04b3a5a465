"""build_features: a validated transaction log and an as-of date in, one row of features per customer out."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd
import pyarrow as pa

from core import defaults
from core.errors import DataError
from core.units import NS_PER_DAY
from features.behaviour import (
    WINDOWS_DAYS,
    group_orders,
    optional_features,
    order_features,
    return_features,
    rhythm_features,
)
from features.customer_rows import CustomerRows, as_of_day, sort_rows
from features.labels import LABEL_COLUMNS, holdout_labels
from features.rfm import RFM_COLUMNS, past_purchase_days, rfm

logger = logging.getLogger(__name__)

BEHAVIOUR_COLUMNS = (
    "order_count",
    "gross_spend",
    "net_spend",
    "return_count",
    "return_amount",
    "return_rate",
    "return_value_share",
    "first_order_value",
    "max_order_value",
    "avg_order_value",
)
OPTIONAL_COLUMNS = ("discount_share", "promo_share", "n_categories", "top_category_share", "margin_rate")
RHYTHM_COLUMNS = (
    "days_since_last",
    "tenure_days",
    "gap_mean",
    "gap_std",
    "overdue_ratio",
    "gap_trend",
    "gap_last",
    "gap_previous",
    "overdue_longest_ratio",
    "recent_wait_days",
    "longest_wait_days",
    "avg_wait_days",
)
WINDOW_COLUMNS = (
    *(f"orders_{w}d" for w in WINDOWS_DAYS),
    *(f"spend_{w}d" for w in WINDOWS_DAYS),
    "spend_trend",
)
FEATURE_COLUMNS = (*RFM_COLUMNS, *BEHAVIOUR_COLUMNS, *OPTIONAL_COLUMNS, *RHYTHM_COLUMNS, *WINDOW_COLUMNS)
"""Every feature column in output order (optional ones only when their source column is present)."""
PURCHASE_EFFECT = {
    **dict.fromkeys(("frequency", "recency", "order_count", "gross_spend", "net_spend", "max_order_value"), 1),
    **dict.fromkeys(("n_categories", *(c for c in WINDOW_COLUMNS)), 1),
    **dict.fromkeys(("T", "tenure_days", "return_count", "return_amount", "longest_wait_days"), 0),
    **dict.fromkeys(("return_rate", "return_value_share", "days_since_last", "overdue_ratio"), -1),
    **dict.fromkeys(("overdue_longest_ratio", "recent_wait_days", "avg_wait_days"), -1),
}
"""What one more purchase on the as-of day does to a feature, all else as it was: +1 raises it or leaves
it, -1 lowers it or leaves it, 0 leaves it (spend_trend rises with the last 90 days' spend). Features not
named move either way: the completed-gap statistics (a purchase today completes a gap of any length:
gap_mean, gap_std, gap_trend, gap_last, gap_previous), the per-order and per-day means (monetary_value,
avg_order_value), first_order_value (a purchase earlier in the day than a first-ever one today becomes
the first order) and the optional shares (discount_share, promo_share, top_category_share, margin_rate).
tests/features/test_properties.py checks every entry on a generated log."""
_OPTIONAL_SOURCES = {
    "discount_share": "discount",
    "promo_share": "promo",
    "n_categories": "category",
    "top_category_share": "category",
    "margin_rate": "cost",
}


def feature_columns(transactions: pd.DataFrame, horizon_days: int | None = None) -> list[str]:
    """The columns `build_features` returns for this log (optional features need their source column)."""
    columns = [
        name
        for name in FEATURE_COLUMNS
        if name not in _OPTIONAL_SOURCES or _OPTIONAL_SOURCES[name] in transactions.columns
    ]
    return columns + (list(LABEL_COLUMNS) if horizon_days is not None else [])


def build_features(
    transactions: pd.DataFrame | CustomerRows,
    as_of: str | dt.date | pd.Timestamp,
    time_unit_days: int = defaults.TIME_UNIT_DAYS,
    horizon_days: int | None = None,
) -> pd.DataFrame:
    """Point-in-time features of every customer with a purchase on or before `as_of` (inclusive).

    `as_of` is the last observed day (its time of day is ignored), exactly lifetimes'
    `observation_period_end`: only rows on or before it shape the features. With `horizon_days`,
    the label columns (`churned`, `holdout_purchases`, `holdout_net_spend`) come from the rows in
    (as_of, as_of + horizon_days] only, and the log must reach as_of + horizon_days. The frame is
    indexed by customer_id in ascending order, float64 except `churned` (int64), free of NaN and
    inf; a log with no purchase by `as_of` gives an empty frame with the same columns. Column
    definitions: `features.rfm.rfm`, `features.behaviour` (ARCHITECTURE.md lists the names).
    `transactions` may be the log already coded by `features.customer_rows.sort_rows` (the scoring
    path codes it once for the features and the row signals).
    """
    if time_unit_days not in (1, 7):
        raise DataError(f"time_unit_days must be 1 (days) or 7 (weeks), got {time_unit_days}")
    if horizon_days is not None and horizon_days < 1:
        raise DataError(f"horizon_days must be at least 1, got {horizon_days}")
    end = as_of_day(as_of)
    frame = transactions.frame if isinstance(transactions, CustomerRows) else transactions
    columns = feature_columns(frame, horizon_days)
    if frame.empty:
        return _empty(columns)
    rows = transactions if isinstance(transactions, CustomerRows) else sort_rows(transactions)
    if horizon_days is not None:
        _check_horizon(rows, end, horizon_days)

    days = past_purchase_days(rows, end)
    buyers = days.customers
    if len(buyers) == 0:
        return _empty(columns)
    values: dict[str, np.ndarray] = dict(rfm(days, end, time_unit_days))
    values.update(rhythm_features(days, end))

    past = rows.day <= end
    bought = past & ~rows.is_return
    returned = past & rows.is_return
    order_id = rows.strings("order_id")
    n = rows.n_customers
    purchases = group_orders(
        rows.code[bought],
        rows.timestamp_ns[bought],
        rows.amount[bought],
        None if order_id is None else order_id.filter(pa.array(bought)),
    )
    per_code = order_features(purchases, n, end)
    returns = group_orders(
        rows.code[returned],
        rows.timestamp_ns[returned],
        rows.amount[returned],
        None if order_id is None else order_id.filter(pa.array(returned)),
    )
    per_code.update(return_features(returns, per_code["gross_spend"], per_code["order_count"], n))
    per_code.update(_optional(rows, bought, per_code["gross_spend"]))
    if horizon_days is not None:
        per_code.update(holdout_labels(rows, end, horizon_days))
    values.update({name: array[buyers] for name, array in per_code.items()})

    _check_finite(values)
    if "churned" not in columns:
        # Every column float: written into one float block that the frame keeps as it is, without
        # pandas' checks per column (a dict of columns makes one block per column; building it took 3.4 of
        # the ~100 ms of a one-customer API pass under cProfile); the scorer reads the block back uncopied.
        block = np.empty((len(columns), len(buyers)))
        for i, name in enumerate(columns):
            block[i] = values[name]
        return pd.DataFrame(block.T, index=rows.ids[buyers], columns=columns, copy=False)
    data = {name: values[name].astype(np.int64 if name == "churned" else float, copy=False) for name in columns}
    return pd.DataFrame(data, index=rows.ids[buyers], copy=False)


def _optional(rows: CustomerRows, bought: np.ndarray, gross: np.ndarray) -> dict[str, np.ndarray]:
    """Features of the optional columns the log has, from its purchase rows on or before as_of."""
    discount = rows.column("discount", float)
    promo = rows.column("promo", bool)
    category = rows.category_codes("category")
    cost = rows.column("cost", float)
    return optional_features(
        rows.code[bought],
        rows.amount[bought],
        gross,
        rows.n_customers,
        discount=None if discount is None else discount[bought],
        promo=None if promo is None else promo[bought],
        category=None if category is None else category[bought],
        cost=None if cost is None else cost[bought],
    )


def _check_horizon(rows: CustomerRows, end: int, horizon_days: int) -> None:
    """Refuse labels for a window the log does not cover (every customer would look churned)."""
    check_horizon_covered(int(rows.day.max()), end, horizon_days)


def check_horizon_covered(last_day: int, end: int, horizon_days: int) -> None:
    """Refuse labels for (end, end + horizon_days] when the log's last day (days since 1970) falls short."""
    if last_day < end + horizon_days:
        needed = pd.Timestamp((end + horizon_days) * NS_PER_DAY).date()
        raise DataError(
            f"labels for {horizon_days} days after the as-of date need data through {needed}, "
            f"but the data ends on {pd.Timestamp(last_day * NS_PER_DAY).date()}; choose an earlier --as-of"
        )


# Columns that may be missing (NaN) for a customer, by design: margin_rate when none of the
# customer's rows carries a cost (the CLV model then applies its configured margin rate).
MAY_BE_MISSING = ("margin_rate",)


def _check_finite(values: dict[str, np.ndarray]) -> None:
    """The pipeline's promise at its edge: every value is a finite number (or missing where allowed)."""
    bad = [
        name
        for name, array in values.items()
        if not (np.isfinite(array) | (np.isnan(array) if name in MAY_BE_MISSING else False)).all()
    ]
    if bad:
        raise DataError(f"non-finite feature values in {bad}; the transactions hold non-finite amounts or costs")


def _empty(columns: list[str]) -> pd.DataFrame:
    """The feature frame of a log with no customer to describe."""
    frame = pd.DataFrame({name: np.zeros(0, dtype=np.int64 if name == "churned" else float) for name in columns})
    frame.index = pd.Index([], dtype="str", name="customer_id")
    return frame
