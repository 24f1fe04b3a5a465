"""Labels for a horizon after the as-of date: churned, holdout purchases and holdout net spend."""

from __future__ import annotations

import numpy as np

from features.customer_rows import CustomerRows
from features.rfm import run_starts

LABEL_COLUMNS = ("churned", "holdout_purchases", "holdout_net_spend")


def holdout_labels(rows: CustomerRows, as_of: int, horizon_days: int) -> dict[str, np.ndarray]:
    """Labels per customer code from the rows in (as_of, as_of + horizon_days] only.

    holdout_purchases = distinct purchase days in the window (lifetimes' `frequency_holdout` with
    freq='D', returns excluded); holdout_net_spend = purchases minus returns in the window;
    churned = 1 when there is no purchase day in it, else 0.
    """
    window = (rows.day > as_of) & (rows.day <= as_of + horizon_days)
    bought = window & ~rows.is_return
    code, day = rows.code[bought], rows.day[bought]
    purchases = np.bincount(code[run_starts(code, day)], minlength=rows.n_customers).astype(float)
    return {
        "churned": (purchases == 0).astype(np.int64),
        "holdout_purchases": purchases,
        "holdout_net_spend": np.bincount(rows.code[window], weights=rows.amount[window], minlength=rows.n_customers),
    }
