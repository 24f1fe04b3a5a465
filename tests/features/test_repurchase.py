"""Repurchase cycles per category on a log with known gaps."""

from __future__ import annotations

import pandas as pd

from features.repurchase import category_gaps, last_category_purchase, repurchase_cycles


def _log() -> pd.DataFrame:
    rows = [
        ("a", "2024-01-01", "tea"), ("a", "2024-01-11", "tea"), ("a", "2024-01-31", "tea"),
        ("a", "2024-01-31", "cups"), ("b", "2024-01-05", "tea"), ("b", "2024-01-05", "tea"),
        ("b", "2024-01-25", "tea"), ("c", "2024-01-02", "cups"), ("c", "2024-02-10", "tea"),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "category"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    frame["amount"] = 10.0
    frame["is_return"] = False
    return pd.concat(
        [frame, pd.DataFrame({"customer_id": ["a"], "timestamp": [pd.Timestamp("2024-01-20")], "category": ["tea"], "amount": [-10.0], "is_return": [True]})],
        ignore_index=True,
    )


def test_gaps_are_between_distinct_purchase_days_in_one_category():
    gaps = category_gaps(_log(), "2024-02-28")
    assert sorted(gaps.loc[gaps["category"] == "tea", "gap_days"]) == [10.0, 20.0, 20.0]
    assert gaps.loc[gaps["category"] == "cups"].empty  # a and c each bought cups once


def test_cycles_give_median_quartiles_and_counts():
    cycles = repurchase_cycles(_log(), "2024-02-28").set_index("category")
    tea = cycles.loc["tea"]
    assert (tea["customers"], tea["repeat_customers"], tea["gaps"]) == (3, 2, 3)
    assert tea["median_days"] == 20.0 and tea["q1_days"] == 15.0 and tea["q3_days"] == 20.0
    assert cycles.loc["cups", "gaps"] == 0 and pd.isna(cycles.loc["cups", "median_days"])


def test_as_of_cuts_later_purchases():
    cycles = repurchase_cycles(_log(), "2024-01-20").set_index("category")
    assert cycles.loc["tea", "gaps"] == 1 and cycles.loc["tea", "median_days"] == 10.0


def test_last_category_and_days_since():
    last = last_category_purchase(_log(), "2024-02-28")
    assert last.loc["c", "category"] == "tea" and last.loc["c", "days_since"] == 18.0
    assert last.loc["b", "days_since"] == 34.0


def test_no_category_column_gives_an_empty_table():
    assert repurchase_cycles(_log().drop(columns=["category"]), "2024-02-28").empty
