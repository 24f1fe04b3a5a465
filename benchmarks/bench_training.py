"""Churn model variants against the baselines on the out-of-time holdout of CDNOW and Online Retail.

Each step of the churn recipe is added in turn and measured on the newest holdout (features at E-H,
labels from (E-H, E], E = last day of data, H = 90 days), with the BTYD model the training pipeline
chooses. Prints one Markdown table per data set (ROC-AUC, PR-AUC, lift at the top 10%).

Usage: .venv/bin/python benchmarks/bench_training.py [--data cdnow|retail|both]
Results are recorded in benchmarks/RESULTS.md ("Churn and value models vs baselines"), beside
benchmarks/bench_churn.py's variants with their bootstrap intervals.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]
sys.path.append(str(REPO / "tests"))

from realdata import CDNOW_MAP, ONLINE_RETAIL, ONLINE_RETAIL_MAP, lifetimes_dataset  # noqa: E402

from features import load_transactions  # noqa: E402
from models.churn import ChurnModel  # noqa: E402
from models.scorer import BTYD_COLUMNS, btyd_outputs  # noqa: E402
from training.evaluate import baseline_churn_scores, churn_metrics, value_metrics  # noqa: E402
from training.fit import (  # noqa: E402
    BOOSTING_PARAMS,
    CHURN_MONOTONE,
    FeatureCache,
    TrainingConfig,
    clv_model,
    model_inputs,
    stacked_training_set,
    value_model,
)
from training.menu import btyd_menu_choice, inner_as_of  # noqa: E402
from training.split import SNAPSHOT_COLUMN, plan_out_of_time  # noqa: E402

SIMPLE = ["frequency", "recency", "T", "monetary_value", "days_since_last", "order_count", "net_spend", "avg_order_value", "tenure_days"]


def load(name: str) -> pd.DataFrame:
    """A real data set through the transaction contract."""
    if name == "cdnow":
        return load_transactions(lifetimes_dataset("CDNOW_master.txt"), mapping=CDNOW_MAP, date_format="%Y%m%d").transactions
    return load_transactions(ONLINE_RETAIL, mapping=ONLINE_RETAIL_MAP).transactions


def fit_and_score(train: pd.DataFrame, holdout: pd.DataFrame, columns: list[str], params: dict, grouped: bool) -> np.ndarray:
    """Fit one churn model variant and return its holdout probabilities."""
    model = ChurnModel(seed=42, n_threads=1, **params)
    groups = train["customer_id"].to_numpy() if grouped else None
    model.fit(train[columns].astype(float), train["churned"].to_numpy(dtype=int), groups=groups)
    return model.predict_proba(holdout[columns].astype(float))


def bench(name: str) -> None:
    started = time.perf_counter()
    transactions = load(name)
    config = TrainingConfig(n_threads=1, churn_snapshots=6)
    plan = plan_out_of_time(transactions, config.churn_horizon_days, config.churn_snapshots, config.snapshot_step_days)
    cache = FeatureCache(transactions, config.churn_horizon_days, config.time_unit_days)
    chosen = btyd_menu_choice(cache.get(inner_as_of(plan)), config)
    clv = clv_model(config, chosen).fit(cache.get(plan.holdout_as_of))
    holdout = cache.get(plan.holdout_as_of)
    holdout = pd.concat([holdout, btyd_outputs(clv, holdout, config.churn_horizon_days, config.clv_horizon_days)], axis=1)
    stacked = stacked_training_set(cache, plan.evaluation_snapshots, config, clv)
    latest = stacked[stacked[SNAPSHOT_COLUMN] == plan.evaluation_snapshots[0]]
    four = stacked[stacked[SNAPSHOT_COLUMN].isin(plan.evaluation_snapshots[:4])]
    y = holdout["churned"].to_numpy(dtype=int)
    everything = model_inputs(stacked)
    behaviour = [c for c in everything if c not in BTYD_COLUMNS]
    mono = {c: v for c, v in CHURN_MONOTONE.items() if c in everything}
    variants = [
        ("LightGBM, RFM + simple behaviour, 1 snapshot, library defaults", latest, SIMPLE, {}, False),
        ("+ all behaviour and rhythm features", latest, behaviour, {}, False),
        ("+ BTYD outputs as features", latest, everything, {}, False),
        ("+ 4 stacked snapshots, random validation split", four, everything, {}, False),
        ("+ validation split grouped by customer", four, everything, {}, True),
        ("+ monotone constraints", four, everything, {"monotone_constraints": mono}, True),
        ("+ tuned regularisation (the production recipe)", four, everything, {"monotone_constraints": mono, **BOOSTING_PARAMS}, True),
        ("  same with 6 snapshots", stacked, everything, {"monotone_constraints": mono, **BOOSTING_PARAMS}, True),
    ]
    rows = []
    for label, score in baseline_churn_scores(holdout, holdout["p_alive"].to_numpy()).items():
        m = churn_metrics(y, score, np.clip(score, 0, 1))
        rows.append((f"baseline: {label}", m))
    for label, train, columns, params, grouped in variants:
        prob = fit_and_score(train, holdout, columns, params, grouped)
        rows.append((label, churn_metrics(y, prob)))
    print(f"\n### {name}: holdout features at {plan.holdout_as_of.date()}, {len(holdout):,} customers, "
          f"churn rate {y.mean():.3f}; BTYD model {chosen}\n")
    print("| variant | ROC-AUC | PR-AUC | lift@10% |")
    print("|---|---:|---:|---:|")
    for label, m in rows:
        print(f"| {label} | {m['churn_auc']:.4f} | {m['churn_pr_auc']:.4f} | {m['churn_lift_10']:.3f} |")
    spend = holdout["holdout_net_spend"].to_numpy(dtype=float)
    regressor = value_model(config, len(four)).fit(
        four[everything].astype(float), four["holdout_net_spend"].to_numpy(dtype=float), groups=four["customer_id"].to_numpy()
    )
    print("\n| value ranking | Spearman | normalized Gini | top-10% capture |")
    print("|---|---:|---:|---:|")
    for label, score in [
        (f"BTYD ({chosen}) x Gamma-Gamma CLV", holdout["clv"].to_numpy()),
        ("LightGBM regressor of holdout spend", regressor.predict(holdout[everything].astype(float))),
        ("past net spend", holdout["net_spend"].to_numpy()),
    ]:
        m = value_metrics(spend, score)
        print(f"| {label} | {m['clv_spearman']:.4f} | {m['clv_gini']:.4f} | {m['clv_top10_capture']:.4f} |")
    print(f"\n({time.perf_counter() - started:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["cdnow", "retail", "both"], default="both")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for name in ("cdnow", "retail") if args.data == "both" else (args.data,):
        bench(name)


if __name__ == "__main__":
    main()
