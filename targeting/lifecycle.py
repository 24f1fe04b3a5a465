"""Lifecycle stages by days since the last purchase.

With d = days since the last purchase and the policy's thresholds (defaults 90, 180, 365):

| stage      | rule                                            | defaults        |
|------------|-------------------------------------------------|-----------------|
| `new`      | d < active_days and a single purchase (frequency == 0) | d in [0, 90) |
| `active`   | d < active_days                                 | d in [0, 90)    |
| `sleeping` | active_days <= d <= sleeping_days               | d in [90, 180]  |
| `at_risk`  | sleeping_days < d <= at_risk_days               | d in (180, 365] |
| `lost`     | d > at_risk_days                                | d > 365         |

Each threshold belongs to the less engaged stage on its left ("active: fewer than 90 days", "sleeping: up
to 180 days", "at risk: up to 365 days, beyond is lost"), as in `core.defaults`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core import defaults
from targeting.policy import STAGES

STAGE_NAMES = np.array(STAGES, dtype=object)
NEW, ACTIVE, SLEEPING, AT_RISK, LOST = range(5)  # positions in STAGES


def stage_codes(
    days_since_last: Sequence[float] | np.ndarray | pd.Series,
    frequency: Sequence[float] | np.ndarray | pd.Series,
    active_days: int = defaults.ACTIVE_DAYS,
    sleeping_days: int = defaults.SLEEPING_DAYS,
    at_risk_days: int = defaults.AT_RISK_DAYS,
) -> np.ndarray:
    """Lifecycle stage index per customer (positions in `STAGES`; boundaries in the module's table)."""
    days = np.asarray(days_since_last, dtype=float).reshape(-1)
    repeat = np.asarray(frequency, dtype=float).reshape(-1)
    if days.shape != repeat.shape:
        raise ValueError("days_since_last and frequency must have the same length")
    if not (np.isfinite(days).all() and np.isfinite(repeat).all()):
        raise ValueError("days_since_last and frequency must be finite for every customer")
    if not 0 < active_days <= sleeping_days <= at_risk_days:
        raise ValueError("lifecycle thresholds must satisfy 0 < active_days <= sleeping_days <= at_risk_days")
    active = days < active_days
    codes = np.select(
        [active & (repeat == 0), active, days <= sleeping_days, days <= at_risk_days],
        [NEW, ACTIVE, SLEEPING, AT_RISK],
        default=LOST,
    )
    return codes.astype(np.int8)

