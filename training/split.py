"""Out-of-time design: which as-of dates train, which evaluate, and how much history that needs.

With the data ending at E and a churn horizon H:

- evaluation: features at E-H, labels from (E-H, E] (the newest holdout);
- the out-of-time model: BTYD calibrated on data up to E-H; the churn and value models trained on
  stacked snapshots at E-2H, E-2H-step, ... each labelled with the H days that follow it, so no label
  reaches past E-H;
- production: the same recipe shifted by H (BTYD on everything up to E, snapshots at E-H, E-H-step, ...),
  scored as of E.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from core.errors import DataError

logger = logging.getLogger(__name__)

SNAPSHOT_COLUMN = "snapshot_as_of"


@dataclass(frozen=True)
class OutOfTimePlan:
    """The dates of one training run (all are inclusive last observed days, like `as_of`)."""

    data_start: pd.Timestamp
    data_end: pd.Timestamp
    horizon_days: int
    holdout_as_of: pd.Timestamp
    evaluation_snapshots: tuple[pd.Timestamp, ...]
    production_snapshots: tuple[pd.Timestamp, ...]

    def to_dict(self) -> dict[str, object]:
        """The plan as JSON-ready values (for MLflow params and the model's metadata)."""
        return {
            "data_start": self.data_start.date().isoformat(),
            "data_end": self.data_end.date().isoformat(),
            "horizon_days": self.horizon_days,
            "holdout_as_of": self.holdout_as_of.date().isoformat(),
            "evaluation_snapshots": [d.date().isoformat() for d in self.evaluation_snapshots],
            "production_snapshots": [d.date().isoformat() for d in self.production_snapshots],
        }


def required_history_days(horizon_days: int, min_history_days: int | None = None) -> int:
    """Days of data the design needs: two horizons plus the history the first training snapshot sees."""
    return 2 * horizon_days + (horizon_days if min_history_days is None else min_history_days)


def snapshot_dates(
    anchor: pd.Timestamp,
    horizon_days: int,
    n_snapshots: int,
    step_days: int,
    earliest: pd.Timestamp,
) -> tuple[pd.Timestamp, ...]:
    """Training as-of dates for a model fitted on data up to `anchor`: anchor-H, anchor-H-step, ...

    Snapshots before `earliest` (too little history behind them) are left out; the first is always kept.
    """
    first = anchor - pd.Timedelta(days=horizon_days)
    dates = [first - pd.Timedelta(days=k * step_days) for k in range(n_snapshots)]
    kept = tuple(d for d in dates if d >= earliest) or (first,)
    if len(kept) < n_snapshots:
        logger.info(
            "using %d of %d training snapshots: earlier ones would see less than the minimum history",
            len(kept),
            n_snapshots,
        )
    return kept


def plan_out_of_time(
    transactions: pd.DataFrame,
    horizon_days: int,
    n_snapshots: int = 4,
    step_days: int = 30,
    as_of: str | pd.Timestamp | None = None,
    min_history_days: int | None = None,
) -> OutOfTimePlan:
    """Lay out the out-of-time design for a transaction log; DataError when the history is too short.

    `as_of` (default: the last transaction's day) is E; `min_history_days` (default: one horizon) is the
    least history any training snapshot may see.
    """
    if horizon_days < 1:
        raise DataError(f"the churn horizon must be at least one day, got {horizon_days}")
    if transactions.empty:
        raise DataError("the transaction log is empty: nothing to train on")
    timestamps = transactions["timestamp"]
    data_start = timestamps.min().normalize()
    last_day = timestamps.max().normalize()
    data_end = last_day if as_of is None else pd.Timestamp(as_of).normalize()
    if data_end < data_start:
        raise DataError(f"--as-of {data_end.date()} is before the first transaction ({data_start.date()})")
    if data_end > last_day:
        logger.warning("as-of %s is after the last transaction (%s)", data_end.date(), last_day.date())
    history = min_history_days if min_history_days is not None else horizon_days
    needed = required_history_days(horizon_days, history)
    span = int((data_end - data_start).days)
    if span < needed:
        raise DataError(
            f"the out-of-time design needs at least {needed} days of history (2 x the {horizon_days}-day "
            f"churn horizon + {history} days before the first training snapshot), but the data spans "
            f"{span} days ({data_start.date()} to {data_end.date()}); use more data or a shorter "
            "--churn-horizon-days"
        )
    earliest = data_start + pd.Timedelta(days=history)
    holdout_as_of = data_end - pd.Timedelta(days=horizon_days)
    return OutOfTimePlan(
        data_start=data_start,
        data_end=data_end,
        horizon_days=horizon_days,
        holdout_as_of=holdout_as_of,
        evaluation_snapshots=snapshot_dates(holdout_as_of, horizon_days, n_snapshots, step_days, earliest),
        production_snapshots=snapshot_dates(data_end, horizon_days, n_snapshots, step_days, earliest),
    )


def restrict_to(transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Transactions on or before the day `as_of` (a guard: nothing after E may reach training)."""
    cutoff = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    mask = transactions["timestamp"] < cutoff
    return transactions if bool(mask.all()) else transactions.loc[mask]
