"""build_features: a validated transaction log and an as-of date in, one row of features per customer out."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from features.behaviour import optional_features, order_features, return_features, rhythm_features
from features.errors import DataError
from features.labels import holdout_labels
from features.rfm import purchase_days, rfm

NS_PER_DAY = 86_400_000_000_000
RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
LABEL_COLUMNS = ("churned", "holdout_purchases", "holdout_net_spend")


def to_day(value: str | dt.date | pd.Timestamp) -> int:
    """A date as whole days since 1970-01-01 (the time of day is dropped)."""
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataError(f"not a date: {value!r} (use YYYY-MM-DD)") from exc
    if pd.isna(stamp):
        raise DataError(f"not a date: {value!r} (use YYYY-MM-DD)")
    return int(stamp.normalize().value // NS_PER_DAY)


def build_features(
    transactions: pd.DataFrame,
    as_of: str | dt.date | pd.Timestamp,
    time_unit_days: int = 1,
    horizon_days: int | None = None,
) -> pd.DataFrame:
    """Point-in-time features of every customer with a purchase on or before `as_of` (inclusive).

    Only rows on or before `as_of` shape the features; with `horizon_days`, the label columns come
    from rows in (as_of, as_of + horizon_days] only. Columns are listed in ARCHITECTURE.md.
    """
    if time_unit_days not in (1, 7):
        raise DataError("time_unit_days must be 1 (days) or 7 (weeks)")
    as_of_day = to_day(as_of)
    timestamp_ns = transactions["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    day = timestamp_ns // NS_PER_DAY
    amount = transactions["amount"].to_numpy(dtype=float)
    is_return = transactions["is_return"].to_numpy(dtype=bool)
    codes, ids = pd.factorize(transactions["customer_id"], sort=False)
    codes = codes.astype(np.int64)

    past = day <= as_of_day
    bought = past & ~is_return
    if not bought.any():
        raise DataError(f"no purchases on or before {pd.Timestamp(as_of).date()}: nothing to build features from")
    days = purchase_days(codes[bought], day[bought], amount[bought])
    n = len(days.customers)
    position_of = np.full(len(ids), -1, dtype=np.int64)
    position_of[days.customers] = np.arange(n)
    position = position_of[codes]

    columns: dict[str, np.ndarray] = dict(rfm(days, as_of_day, time_unit_days))
    order_key = _order_keys(transactions, timestamp_ns)
    orders = order_features(position[bought], order_key[bought], timestamp_ns[bought], amount[bought], n, as_of_day)
    columns.update(orders)
    returned = past & is_return & (position >= 0)
    columns.update(
        return_features(position[returned], order_key[returned], amount[returned], n, orders["gross_spend"], orders["order_count"])
    )
    columns.update(rhythm_features(days, as_of_day))
    columns.update(
        optional_features(
            position[bought],
            amount[bought],
            n,
            orders["gross_spend"],
            discount=_column(transactions, "discount", bought),
            promo=_column(transactions, "promo", bought, dtype=bool),
            category=_category_codes(transactions, bought),
            cost=_column(transactions, "cost", bought),
        )
    )
    if horizon_days is not None:
        columns.update(_labels(transactions, day, amount, is_return, position, as_of_day, horizon_days, n))

    index = pd.Index(np.asarray(ids, dtype=object)[days.customers], name="customer_id", dtype=object)
    features = pd.DataFrame(columns, index=index)
    return features.sort_index(kind="stable")


def _labels(
    transactions: pd.DataFrame,
    day: np.ndarray,
    amount: np.ndarray,
    is_return: np.ndarray,
    position: np.ndarray,
    as_of_day: int,
    horizon_days: int,
    n: int,
) -> dict[str, np.ndarray]:
    """Labels from (as_of, as_of + H], refusing a window the data does not cover."""
    if horizon_days < 1:
        raise DataError("horizon_days must be at least 1")
    end_day = as_of_day + horizon_days
    last_day = int(day.max())
    if last_day < end_day:
        raise DataError(
            f"labels for {horizon_days} days after the as-of date need data through "
            f"{pd.Timestamp(end_day * NS_PER_DAY).date()}, but the data ends on {pd.Timestamp(last_day * NS_PER_DAY).date()}"
        )
    window = (day > as_of_day) & (day <= end_day) & (position >= 0)
    return holdout_labels(position[window], day[window], amount[window], is_return[window], n)


def _order_keys(transactions: pd.DataFrame, timestamp_ns: np.ndarray) -> np.ndarray:
    """An order is one order id when the data has them (else one timestamp), per customer."""
    if "order_id" in transactions.columns:
        keys, _ = pd.factorize(transactions["order_id"].fillna("").astype(str), sort=False)
        return keys.astype(np.int64)
    return timestamp_ns


def _column(transactions: pd.DataFrame, name: str, rows: np.ndarray, dtype: type = float) -> np.ndarray | None:
    """An optional column's values on `rows`, or None when the data lacks it."""
    if name not in transactions.columns:
        return None
    return transactions[name].to_numpy(dtype=dtype)[rows]


def _category_codes(transactions: pd.DataFrame, rows: np.ndarray) -> np.ndarray | None:
    """Integer codes of the category column on `rows` (missing categories are one code), or None."""
    if "category" not in transactions.columns:
        return None
    codes, _ = pd.factorize(transactions["category"].fillna("").astype(str), sort=False)
    return codes.astype(np.int64)[rows]
