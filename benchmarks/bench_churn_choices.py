"""Churn ROC-AUC of every menu choice on the inner and the reported holdout, and what a purchase today does.

For each data set (CDNOW, Online Retail, generated) the out-of-time design of `patron train` (E = last
day, H = 90 days, seed 42, one LightGBM thread):
- inner holdout (features at E-2H, labels (E-2H, E-H]): `training.menu.choose_on_inner_holdout`, one
  AUC per `CHURN_CHOICES` entry (the figures the menu chooses by);
- reported holdout (features at E-H, labels (E-H, E]): each choice fitted as `patron train` fits its
  evaluation scorer (`fit_parts` at E-H with the inner holdout's BTYD model), its AUC;
- purchase today: every reported-holdout customer gets one more purchase on E-H (a copy of their last
  purchase row), the features are rebuilt and the count of customers whose churn probability rises
  (by more than 1e-9) and the largest rise are printed per choice. A churn model that reads only
  features a purchase moves one way, with its constraints, gives 0.

Usage: .venv/bin/python benchmarks/bench_churn_choices.py [--data cdnow,retail,generated] [--seed 42]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from realdata import CDNOW_MAP, ONLINE_RETAIL, ONLINE_RETAIL_MAP  # noqa: E402

from features import build_features, load_transactions  # noqa: E402
from features.datasets import cdnow_master_path  # noqa: E402
from features.synthetic import generate_transactions  # noqa: E402
from models.scorer import btyd_outputs  # noqa: E402
from training.evaluate import churn_metrics  # noqa: E402
from training.fit import FeatureCache, TrainingConfig, fit_parts  # noqa: E402
from training.menu import CHURN_CHOICES, choose_on_inner_holdout  # noqa: E402
from training.split import plan_out_of_time, restrict_to  # noqa: E402

EPS = 1e-9


def load(name: str) -> pd.DataFrame:
    """The data set's transactions through the contract."""
    if name == "cdnow":
        return load_transactions(cdnow_master_path(), mapping=CDNOW_MAP, date_format="%Y%m%d").transactions
    if name == "retail":
        return load_transactions(ONLINE_RETAIL, mapping=ONLINE_RETAIL_MAP).transactions
    return generate_transactions(20_000, seed=7).transactions


def with_purchase_today(tx: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The log up to `as_of` plus, for every customer, a copy of their last purchase row at noon on `as_of`."""
    past = tx[tx["timestamp"] < as_of + pd.Timedelta(days=1)]
    last = past[~past["is_return"]].sort_values("timestamp").groupby("customer_id").tail(1).copy()
    last["timestamp"] = as_of + pd.Timedelta(hours=12)
    if "order_id" in last.columns:
        last["order_id"] = last["order_id"].astype("string") + "-X"
    return pd.concat([past, last], ignore_index=True)


def model_input(features: pd.DataFrame, parts, config: TrainingConfig) -> pd.DataFrame:
    """Features plus the fitted BTYD model's outputs, in the churn model's training columns."""
    outputs = btyd_outputs(parts.clv_model, features, config.churn_horizon_days, config.clv_horizon_days)
    frame = pd.concat([features.drop(columns=outputs.columns, errors="ignore"), outputs], axis=1)
    return frame[parts.columns].astype(float)


def measure(name: str, seed: int) -> dict[str, object]:
    """Inner and reported churn AUC per menu choice, and the purchase-today check on the reported holdout."""
    started = time.perf_counter()
    tx = load(name)
    config = TrainingConfig(n_threads=1, seed=seed)
    plan = plan_out_of_time(tx, config.churn_horizon_days, config.churn_snapshots, config.snapshot_step_days)
    tx = restrict_to(tx, plan.data_end)
    cache = FeatureCache(tx, config.churn_horizon_days, config.time_unit_days)
    choice = choose_on_inner_holdout(cache, plan, config)
    holdout = cache.get(plan.holdout_as_of)
    y = holdout["churned"].to_numpy(dtype=int)
    bought = build_features(with_purchase_today(tx, plan.holdout_as_of), plan.holdout_as_of)
    bought = bought.loc[holdout.index]
    out: dict[str, object] = {
        "data": name,
        "btyd_model": choice.btyd_model,
        "chosen": choice.churn_level,
        "inner_auc": {c: round(choice.metrics[f"inner_churn_{c}_auc"], 4) for c in CHURN_CHOICES},
    }
    reported, rises = {}, {}
    for level in CHURN_CHOICES:
        level_config = replace(choice, churn_level=level).config_for(config)
        parts = fit_parts(cache, plan.holdout_as_of, plan.evaluation_snapshots, level_config, choice.btyd_model)
        before = parts.churn_model.predict_proba(model_input(holdout, parts, config))
        after = parts.churn_model.predict_proba(model_input(bought, parts, config))
        reported[level] = round(churn_metrics(y, before)["churn_auc"], 4)
        rise = after - before
        rises[level] = {"customers": len(rise), "rose": int((rise > EPS).sum()), "max_rise": round(float(rise.max()), 4)}
    out.update(reported_auc=reported, purchase_today=rises, seconds=round(time.perf_counter() - started, 1))
    out["load_average"] = [round(v, 2) for v in os.getloadavg()]
    return out


def main() -> None:
    """Run the data sets; one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="cdnow,retail,generated")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in args.data.split(","):
        print(json.dumps(measure(name, args.seed)), flush=True)  # noqa: T201


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
