"""Repurchase cycles per category: days between a customer's consecutive purchases in that category.

A purchase here is a distinct (customer, category, day) with a positive line; returns are left out.
The cycle of a category is the distribution of those gaps over all its customers: median and quartiles,
with how many gaps and customers stand behind them. Needs the optional `category` column.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from features.customer_rows import CustomerRows, as_of_day, sort_rows
from features.rfm import run_starts

CYCLE_COLUMNS = ("category", "customers", "repeat_customers", "gaps", "median_days", "q1_days", "q3_days")


def _purchase_days(transactions: pd.DataFrame, as_of: Any) -> pd.DataFrame:
    """Distinct (customer_id, category, day) purchases on or before `as_of`, sorted."""
    cutoff = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    rows = transactions[
        (transactions["timestamp"] < cutoff)
        & ~transactions["is_return"].astype(bool)
        & transactions["category"].notna()
    ]
    days = pd.DataFrame(
        {
            "customer_id": rows["customer_id"].astype(str).to_numpy(),
            "category": rows["category"].astype(str).to_numpy(),
            "day": rows["timestamp"].dt.normalize().to_numpy(),
        }
    ).drop_duplicates()
    return days.sort_values(["category", "customer_id", "day"], kind="stable").reset_index(drop=True)


def category_gaps(transactions: pd.DataFrame, as_of: Any) -> pd.DataFrame:
    """Every gap in days between consecutive purchase days of one customer in one category."""
    days = _purchase_days(transactions, as_of)
    same = (days["customer_id"].to_numpy()[1:] == days["customer_id"].to_numpy()[:-1]) & (
        days["category"].to_numpy()[1:] == days["category"].to_numpy()[:-1]
    )
    gap = np.diff(days["day"].to_numpy()).astype("timedelta64[D]").astype(float)
    later = days.iloc[1:][same]
    return pd.DataFrame(
        {"customer_id": later["customer_id"].to_numpy(), "category": later["category"].to_numpy(), "gap_days": gap[same]}
    )


def repurchase_cycles(transactions: pd.DataFrame, as_of: Any) -> pd.DataFrame:
    """One row per category (CYCLE_COLUMNS); quartiles are NaN for a category nobody bought twice.

    Empty (with the columns) when the log has no `category` column.
    """
    if "category" not in transactions.columns:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "category" else float) for c in CYCLE_COLUMNS})
    days = _purchase_days(transactions, as_of)
    gaps = category_gaps(transactions, as_of)
    customers = days.groupby("category")["customer_id"].nunique()
    by_category = gaps.groupby("category")["gap_days"]
    table = pd.DataFrame(
        {
            "customers": customers,
            "repeat_customers": gaps.groupby("category")["customer_id"].nunique(),
            "gaps": by_category.size(),
            "median_days": by_category.median(),
            "q1_days": by_category.quantile(0.25),
            "q3_days": by_category.quantile(0.75),
        }
    ).reindex(customers.index)
    table[["repeat_customers", "gaps"]] = table[["repeat_customers", "gaps"]].fillna(0).astype(np.int64)
    table = table.rename_axis("category").reset_index()
    return table.sort_values(["customers", "category"], ascending=[False, True], kind="stable").reset_index(drop=True)[
        list(CYCLE_COLUMNS)
    ]


def last_category_purchase(transactions: pd.DataFrame, as_of: Any) -> pd.DataFrame:
    """Per customer: the category of their last purchase day (ties by name) and the days from it to
    `as_of`. Indexed by customer_id (ascending); columns `category, days_since`."""
    rows = sort_rows(transactions)
    category, days_since, names = last_category_codes(rows, as_of_day(as_of))
    has = category >= 0
    return pd.DataFrame(
        {"category": pd.array(names[category[has]], dtype="str"), "days_since": days_since[has]},
        index=pd.Index(rows.ids[has], name="customer_id"),
    )


def last_category_codes(rows: CustomerRows, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per customer code: the category of the last purchase day on or before day `end` with a category
    (the first by name when several; -1 for none), the days from that day to `end` (NaN for none), and
    the category names by code (codes in name order, from `pd.factorize`)."""
    text = rows.strings("category")
    assert text is not None
    codes, names = pd.factorize(pd.Series(pd.arrays.ArrowExtensionArray(text)), sort=True)
    at = np.flatnonzero((rows.day <= end) & ~rows.is_return & (codes >= 0))
    n = rows.n_customers
    category = np.full(n, -1, dtype=np.int64)
    days_since = np.full(n, np.nan)
    if len(at):
        owner, day = rows.code[at], rows.day[at]
        last = np.flatnonzero(np.append(owner[1:] != owner[:-1], True))  # rows are in (customer, time) order
        last_day = np.zeros(n, dtype=np.int64)
        last_day[owner[last]] = day[last]
        on_last = np.flatnonzero(day == last_day[owner])
        starts = np.flatnonzero(run_starts(owner[on_last]))
        category[owner[on_last][starts]] = np.minimum.reduceat(codes[at][on_last], starts)
        days_since[owner[last]] = (end - day[last]).astype(float)
    return category, days_since, np.asarray(names, dtype=object)
