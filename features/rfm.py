"""Recency, frequency, T and monetary value exactly as lifetimes defines them, from sorted numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PurchaseDays:
    """One entry per (customer, purchase day), sorted by customer then day; returns excluded."""

    customer: np.ndarray  # int64 customer code
    day: np.ndarray  # int64 days since 1970-01-01
    spend: np.ndarray  # float64 money spent that day
    first: np.ndarray  # int64 index of each customer's first entry (customers with purchases, in code order)
    count: np.ndarray  # int64 number of purchase days per customer
    customers: np.ndarray  # int64 customer codes of `first`


def purchase_days(customer: np.ndarray, day: np.ndarray, amount: np.ndarray) -> PurchaseDays:
    """Collapse purchase rows to one entry per customer and calendar day (lifetimes' freq='D')."""
    order = np.lexsort((day, customer))
    customer, day, amount = customer[order], day[order], amount[order]
    starts = np.ones(len(customer), dtype=bool)
    starts[1:] = (customer[1:] != customer[:-1]) | (day[1:] != day[:-1])
    start_index = np.flatnonzero(starts)
    spend = np.add.reduceat(amount, start_index) if len(start_index) else np.zeros(0)
    pair_customer = customer[start_index]
    pair_day = day[start_index]
    new_customer = np.ones(len(pair_customer), dtype=bool)
    new_customer[1:] = pair_customer[1:] != pair_customer[:-1]
    first = np.flatnonzero(new_customer)
    count = np.diff(np.append(first, len(pair_customer)))
    return PurchaseDays(pair_customer, pair_day, spend, first, count, pair_customer[first])


def rfm(days: PurchaseDays, as_of_day: int, time_unit_days: int = 1) -> dict[str, np.ndarray]:
    """frequency, recency, T, monetary_value per customer (order of `days.customers`).

    frequency = purchase days - 1; recency = last - first purchase day; T = as_of - first purchase day
    (both divided by `time_unit_days`, so weeks are fractional); monetary_value = mean spend of the
    repeat purchase days (0 without repeats) — `lifetimes.utils.summary_data_from_transaction_data`.
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
        "T": (as_of_day - first_day) / time_unit_days,
        "monetary_value": monetary,
    }
