"""Labels for a horizon after the as-of date: churned, holdout purchases and holdout net spend."""

from __future__ import annotations

import numpy as np

from features.behaviour import _group_starts


def holdout_labels(
    position: np.ndarray, day: np.ndarray, amount: np.ndarray, is_return: np.ndarray, n_customers: int
) -> dict[str, np.ndarray]:
    """Labels from the rows inside (as_of, as_of + H] only (the caller selects them).

    holdout_purchases counts purchase days (lifetimes' `frequency_holdout` with freq='D');
    holdout_net_spend is purchases minus returns in the window; churned = no purchase day in it.
    """
    buys = ~is_return
    order = np.lexsort((day[buys], position[buys]))
    starts = _group_starts(position[buys][order], day[buys][order])
    purchases = np.bincount(position[buys][order][starts], minlength=n_customers).astype(float)
    return {
        "churned": (purchases == 0).astype(np.int64),
        "holdout_purchases": purchases,
        "holdout_net_spend": np.bincount(position, weights=amount, minlength=n_customers),
    }
