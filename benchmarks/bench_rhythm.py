"""How well `expected_next_order_date` predicts the next purchase, against simple baselines.

Run: .venv/bin/python benchmarks/bench_rhythm.py [--customers 20000] [--horizon-days 90]

The out-of-time design of training (`training.split.plan_out_of_time`): the model is fitted on the
data up to the holdout date E - H and predicts each customer's next order day; the truth is the
customer's first purchase day in (E - H, E]. Scored are the customers who did buy in the holdout
and whose P(alive) is at least the floor (the others get no date); a customer who bought nothing in
the window has no observed next-order day to compare with (censored), so they are counted but not scored.

Methods, all clipped to at least 1 day ahead of the holdout date:
- patron: `models.next_order.days_to_next_order` (the customer's mean gap shrunk to the shop's median
  gap by `own_gap_prior_orders` gaps);
- the purchase model's median wait (`model_days_to_next_order`), and half of it plus half patron's;
- last gap: last purchase + the last gap between purchase days;
- mean gap: last purchase + the mean gap;
- shop median gap: last purchase + the shop's median gap.
One-time buyers have no gap: the gap baselines use the shop's median gap for them.

Metrics: median absolute error in days; share of customers whose next purchase fell within the
predicted week (|error| <= 3 days) and month (|error| <= 15 days).
Data: CDNOW (inside lifetimes), Online Retail (../shared/data, when present), a generated log.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd

from features.datasets import (
    CDNOW_DATE_FORMAT,
    CDNOW_MAPPING,
    ONLINE_RETAIL_MAPPING,
    cdnow_master_path,
)
from features.pipeline import build_features
from features.synthetic import generate_transactions
from features.validate import load_transactions, validate_transactions
from models.clv import CLVModel
from models.next_order import days_to_next_order, model_days_to_next_order
from targeting.policy import TargetingPolicy
from training.split import plan_out_of_time, restrict_to

ONLINE_RETAIL = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "online_retail", "online_retail_2010-12_2011-12.csv.gz")
WEEK, MONTH = 3, 15


def first_purchase_after(tx: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Days from `start` to each customer's first purchase day in (start, end]."""
    later = tx[(tx["timestamp"] >= start + pd.Timedelta(days=1)) & (tx["timestamp"] < end + pd.Timedelta(days=1)) & ~tx["is_return"]]
    first = later.groupby(later["customer_id"].astype(str))["timestamp"].min().dt.normalize()
    return (first - start).dt.days.astype(float)


def measure(name: str, tx: pd.DataFrame, horizon_days: int, policy: TargetingPolicy) -> list[dict[str, object]]:
    """Rows of the results table for one data set."""
    plan = plan_out_of_time(tx, horizon_days)
    as_of = plan.holdout_as_of
    features = build_features(restrict_to(tx, as_of), as_of=as_of)
    model = CLVModel(model="bgnbd").fit(features)
    components = model.predict(features, horizon_days)
    actual = first_purchase_after(tx, as_of, plan.data_end).reindex(features.index)
    x, since = features["frequency"].to_numpy(), features["days_since_last"].to_numpy()
    repeat = x >= 1
    shop_gap = float(np.median(features.loc[repeat, "gap_mean"])) if repeat.any() else 30.0

    def from_last(gap: np.ndarray) -> np.ndarray:
        return np.maximum(np.where(repeat, gap, shop_gap) - since, 1.0)

    methods = {
        "patron (own gaps shrunk to the shop's)": days_to_next_order(
            x, np.where(repeat, features["gap_mean"].to_numpy(), np.nan), since, shop_gap, policy.own_gap_prior_orders
        ),
        "purchase model's median wait": np.maximum(model_days_to_next_order(model, x, features["T"].to_numpy()), 1.0),
        "half model, half patron": np.maximum(
            0.5 * model_days_to_next_order(model, x, features["T"].to_numpy())
            + 0.5 * days_to_next_order(x, features["gap_mean"].to_numpy(), since, shop_gap, policy.own_gap_prior_orders),
            1.0,
        ),
        "last gap": from_last(features["gap_last"].to_numpy()),
        "mean gap": from_last(features["gap_mean"].to_numpy()),
        "shop median gap": np.maximum(shop_gap - since, 1.0),
    }
    expected = components["p_alive"].to_numpy() >= policy.p_alive_floor
    scored = expected & actual.notna().to_numpy()
    rows = []
    for method, predicted in methods.items():
        error = np.abs(np.round(predicted[scored]) - actual.to_numpy()[scored])
        rows.append(
            {
                "data": name,
                "method": method,
                "customers": len(features),
                "scored": int(scored.sum()),
                "median_abs_error_days": float(np.median(error)),
                "within_week": float((error <= WEEK).mean()),
                "within_month": float((error <= MONTH).mean()),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000, help="customers of the generated log")
    parser.add_argument("--horizon-days", type=int, default=90)
    args = parser.parse_args()
    policy = TargetingPolicy()
    data = {
        "CDNOW": lambda: load_transactions(cdnow_master_path(), mapping=CDNOW_MAPPING, date_format=CDNOW_DATE_FORMAT).transactions,
        "generated": lambda: validate_transactions(generate_transactions(args.customers, seed=1).transactions).transactions,
    }
    if os.path.exists(ONLINE_RETAIL):
        data["Online Retail"] = lambda: load_transactions(ONLINE_RETAIL, mapping=ONLINE_RETAIL_MAPPING).transactions
    rows = []
    started = time.perf_counter()
    for name, load in data.items():
        rows += measure(name, load(), args.horizon_days, policy)
    table = pd.DataFrame(rows)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.1f}; {time.perf_counter() - started:.0f} s")
    print("| data | method | customers | scored | median abs. error (days) | within the week | within the month |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in table.itertuples(index=False):
        print(
            f"| {row.data} | {row.method} | {row.customers:,} | {row.scored:,} | {row.median_abs_error_days:.0f} "
            f"| {row.within_week:.1%} | {row.within_month:.1%} |"
        )


if __name__ == "__main__":
    main()
