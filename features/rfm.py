"""Recency, frequency, T and monetary value exactly as lifetimes defines them, from customer-sorted arrays."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core import defaults
from core.errors import DataError
from features.customer_rows import CustomerRows, as_of_day, sort_rows

RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")


@dataclass(frozen=True)
class PurchaseDays:
    """One entry per (customer, purchase day), sorted by customer then day; returns excluded.

    Attributes
    ----------
    customer : int64 customer code of each entry.
    day : int64 days since 1970-01-01.
    spend : float64 money spent that day (purchase rows only).
    first : int64 index of each customer's first entry (customers in code order).
    count : int64 number of purchase days per customer.
    customers : int64 customer codes of `first`.
    """

    customer: np.ndarray
    day: np.ndarray
    spend: np.ndarray
    first: np.ndarray
    count: np.ndarray
    customers: np.ndarray


def run_starts(*keys: np.ndarray) -> np.ndarray:
    """Boolean mask of the first row of each run of equal keys (arrays already grouped by the keys)."""
    n = len(keys[0])
    starts = np.ones(n, dtype=bool)
    if n > 1:
        changed = keys[0][1:] != keys[0][:-1]
        for key in keys[1:]:
            changed |= key[1:] != key[:-1]
        starts[1:] = changed
    return starts


def purchase_days(customer: np.ndarray, day: np.ndarray, amount: np.ndarray) -> PurchaseDays:
    """Collapse purchase rows, sorted by customer then day, to one entry per customer and calendar day."""
    start_index = np.flatnonzero(run_starts(customer, day))
    spend = np.add.reduceat(amount, start_index) if len(start_index) else np.zeros(0)
    pair_customer = customer[start_index]
    first = np.flatnonzero(run_starts(pair_customer))
    count = np.diff(np.append(first, len(pair_customer)))
    return PurchaseDays(pair_customer, day[start_index], spend, first, count, pair_customer[first])


def rfm(days: PurchaseDays, as_of: int, time_unit_days: float = defaults.TIME_UNIT_DAYS) -> dict[str, np.ndarray]:
    """frequency, recency, T, monetary_value per customer (in the order of `days.customers`).

    frequency = purchase days - 1; recency = last - first purchase day; T = as_of - first purchase
    day, both divided by `time_unit_days` (so weeks are fractional, as in the BTYD papers);
    monetary_value = mean spend of the repeat purchase days, 0 without repeats. These are the
    definitions of `lifetimes.utils.summary_data_from_transaction_data(..., freq='D')`.
    """
    last = days.first + days.count - 1
    first_day = days.day[days.first]
    frequency = (days.count - 1).astype(float)
    total = np.add.reduceat(days.spend, days.first) if len(days.first) else np.zeros(0)
    repeat_spend = total - days.spend[days.first]
    monetary = np.divide(repeat_spend, frequency, out=np.zeros_like(repeat_spend), where=frequency > 0)
    return {
        "frequency": frequency,
        "recency": (days.day[last] - first_day) / time_unit_days,
        "T": (as_of - first_day) / time_unit_days,
        "monetary_value": monetary,
    }


def past_purchase_days(rows: CustomerRows, as_of: int) -> PurchaseDays:
    """The purchase days of every customer on or before `as_of` (whole days since the epoch)."""
    bought = ~rows.is_return & (rows.day <= as_of)
    return purchase_days(rows.code[bought], rows.day[bought], rows.amount[bought])


def rfm_summary(
    transactions: pd.DataFrame, as_of: str | dt.date | pd.Timestamp, time_unit_days: int = defaults.TIME_UNIT_DAYS
) -> pd.DataFrame:
    """frequency, recency, T, monetary_value of every customer with a purchase on or before `as_of`.

    Indexed by customer_id (ascending); equal to lifetimes' `summary_data_from_transaction_data`
    with `freq='D'` and `observation_period_end=as_of` on the purchase rows, with recency and T
    divided by `time_unit_days`.
    """
    if time_unit_days not in (1, 7):
        raise DataError(f"time_unit_days must be 1 (days) or 7 (weeks), got {time_unit_days}")
    end = as_of_day(as_of)
    rows = sort_rows(transactions)
    days = past_purchase_days(rows, end)
    return pd.DataFrame(rfm(days, end, time_unit_days), index=rows.ids[days.customers])
