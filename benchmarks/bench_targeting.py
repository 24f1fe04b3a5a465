"""Targeting benchmark: the profitability filter against generated ground truth, greedy vs exact, speed.

    .venv/bin/python benchmarks/bench_targeting.py [--customers 20000] [--seeds 1 2 3] [--knapsack-cases 1000]
        [--timing-customers 1000000]

1. Profitability filter: `features.synthetic.generate_transactions` knows which customers lose money on
   every order (`unprofitable`); the transactions go through `features.build_features` and
   `models.clv.CLVModel` as in production, `targeting.decide` marks `negative_net_value`, and we report
   recall and precision of that mark against the truth.
2. Campaign selection: worst and mean gap of `greedy_knapsack` (plain greedy, and with the core repair
   that `select_campaign` uses) to the exact 0/1 knapsack optimum from scipy's milp.
3. Speed: `decide` + `select_campaign` on a million generated score rows.

Prints a Markdown block for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time

import numpy as np
import pandas as pd

from features import build_features
from features.synthetic import generate_transactions
from models.clv import CLVModel
from targeting.campaign import greedy_knapsack, select_campaign
from targeting.decide import decide
from targeting.policy import TargetingPolicy

CHURN_HORIZON_DAYS = 90
CLV_HORIZON_DAYS = 365


def synthetic_scores(n_customers: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Model scores of a generated log at its last day, and the generator's `unprofitable` truth."""
    data = generate_transactions(n_customers, seed=seed)
    as_of = data.transactions["timestamp"].max().normalize()
    features = build_features(data.transactions, as_of=as_of)
    model = CLVModel(clv_horizon_days=CLV_HORIZON_DAYS).fit(features)
    long = model.predict(features, horizon_days=CLV_HORIZON_DAYS)
    short = model.predict(features, horizon_days=CHURN_HORIZON_DAYS)
    p_alive = short["p_alive"].to_numpy()
    # churn stand-in (the churn model is not the subject here): P(no purchase in 90 days) under BTYD
    alive_purchases = np.divide(short["expected_purchases"].to_numpy(), p_alive, out=np.zeros_like(p_alive), where=p_alive > 0)
    churn = 1.0 - p_alive * (1.0 - np.exp(-alive_purchases))
    scores = pd.DataFrame(
        {
            "customer_id": features.index.astype(str),
            "clv": long["clv"].to_numpy(),
            "value_score": long["clv"].to_numpy(),
            "p_alive": p_alive,
            "churn_probability": churn,
            "expected_purchases_clv_horizon": long["expected_purchases"].to_numpy(),
            "expected_order_value": long["expected_order_value"].to_numpy(),
        }
    )
    for column in ("days_since_last", "frequency", "avg_order_value", "return_rate", "return_value_share", "margin_rate"):
        if column in features.columns:
            scores[column] = features[column].to_numpy()
    truth = data.customers["unprofitable"].reindex(scores["customer_id"]).fillna(False).astype(bool)
    return scores, truth


def filter_quality(n_customers: int, seeds: list[int], prior_orders: list[float]) -> pd.DataFrame:
    """Recall and precision of `negative_net_value` against the truth, per seed and return-rate prior weight."""
    rows = []
    for seed in seeds:
        scores, truth = synthetic_scores(n_customers, seed)
        actual = truth.to_numpy()
        for k in prior_orders:
            policy = TargetingPolicy(return_prior_orders=k)
            flagged = (decide(scores, policy)["exclude_reason"] == "negative_net_value").to_numpy()
            rows.append(
                {
                    "seed": seed,
                    "return_prior_orders": k,
                    "customers": len(scores),
                    "unprofitable": int(actual.sum()),
                    "flagged": int(flagged.sum()),
                    "caught": int((flagged & actual).sum()),
                }
            )
        logging.info("seed %d done", seed)
    frame = pd.DataFrame(rows)
    frame["recall"] = frame["caught"] / frame["unprofitable"].clip(lower=1)
    frame["precision"] = frame["caught"] / frame["flagged"].clip(lower=1)
    return frame


def knapsack_case(seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Campaign-like items (as in tests/targeting/test_campaign_selection.py): 30-200 items."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 201))
    contact = rng.choice([0.05, 0.15, 1.2], n, p=[0.7, 0.2, 0.1])
    response = rng.choice([0.65, 0.30, 0.20, 0.08], n)
    incentive = rng.uniform(0, 12, n) * (rng.uniform(size=n) < 0.7)
    cost = contact + response * incentive
    profit = rng.lognormal(0.5, 1.2, n)
    return profit, cost, float(rng.uniform(0.05, 0.6) * cost.sum())


def knapsack_gaps(n_cases: int) -> dict[str, float]:
    """Worst and mean relative gap to the milp optimum, plain greedy and with the core repair."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    plain, repaired = [], []
    for seed in range(n_cases):
        profit, cost, budget = knapsack_case(seed)
        result = milp(
            -profit,
            constraints=LinearConstraint(cost[None, :], -np.inf, budget),
            integrality=np.ones_like(profit),
            bounds=Bounds(0, 1),
            options={"mip_rel_gap": 1e-9},
        )
        optimum = -result.fun
        plain.append((optimum - profit[greedy_knapsack(profit, cost, budget, core_size=0)].sum()) / optimum)
        repaired.append((optimum - profit[greedy_knapsack(profit, cost, budget)].sum()) / optimum)
    return {
        "cases": n_cases,
        "plain_worst": max(plain),
        "plain_mean": float(np.mean(plain)),
        "plain_over_1pct": int(np.sum(np.array(plain) > 0.01)),
        "worst": max(repaired),
        "mean": float(np.mean(repaired)),
        "over_1pct": int(np.sum(np.array(repaired) > 0.01)),
    }


def million_scores(n: int, seed: int = 0) -> pd.DataFrame:
    """n model-like score rows (numpy only), for timing."""
    rng = np.random.default_rng(seed)
    frequency = rng.poisson(2.0, n).astype(float)
    order_value = rng.gamma(2.0, 30.0, n)
    p_alive = rng.beta(2.0, 1.5, n)
    purchases = p_alive * rng.gamma(1.5, 1.5, n) * (frequency + 1) / 3
    clv = 0.3 * purchases * order_value
    width = len(str(n))
    return pd.DataFrame(
        {
            "customer_id": np.char.add("C", np.char.zfill(np.arange(n).astype(str), width)).astype(object),
            "frequency": frequency,
            "clv": clv,
            "value_score": clv,
            "p_alive": p_alive,
            "churn_probability": np.clip(1 - p_alive + rng.normal(0, 0.1, n), 0, 1),
            "expected_purchases_clv_horizon": purchases,
            "expected_order_value": order_value,
            "days_since_last": rng.integers(0, 700, n).astype(float),
            "avg_order_value": order_value * rng.uniform(0.8, 1.2, n),
            "return_rate": np.where(rng.uniform(size=n) < 0.2, rng.uniform(0, 1, n), 0.0),
            "return_value_share": np.where(rng.uniform(size=n) < 0.2, rng.uniform(0, 0.6, n), 0.0),
        }
    )


def timing(n: int, policy: TargetingPolicy, repeats: int = 3) -> dict[str, float]:
    """Best-of-`repeats` seconds of decide (rank tiers and cut-point tiers) and select_campaign."""
    scores = million_scores(n)
    cuts = [float(np.quantile(scores["value_score"], q)) for q in (0.9, 0.75, 0.5)]
    out: dict[str, list[float]] = {"decide_rank": [], "decide_cuts": [], "select_5000": [], "select_all": []}
    for _ in range(repeats):
        start = time.perf_counter()
        decisions = decide(scores, policy)
        out["decide_rank"].append(time.perf_counter() - start)
        start = time.perf_counter()
        decide(scores, policy, cut_points=cuts)
        out["decide_cuts"].append(time.perf_counter() - start)
        start = time.perf_counter()
        result = select_campaign(decisions, 5000.0, policy)
        out["select_5000"].append(time.perf_counter() - start)
        start = time.perf_counter()
        everyone = select_campaign(decisions, 1e12, policy)
        out["select_all"].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in out.items()}
    best.update(customers=n, selected_5000=len(result.selected), selected_all=len(everyone.selected))
    return best


def markdown(frame: pd.DataFrame) -> str:
    """A small frame as a Markdown table (floats to 3 decimals)."""
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * frame.shape[1]]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def main() -> None:
    """Run the three parts and print the RESULTS.md block."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--prior-orders", type=float, nargs="+", default=[0.0, 1.0, 3.0])
    parser.add_argument("--knapsack-cases", type=int, default=1000)
    parser.add_argument("--timing-customers", type=int, default=1_000_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("models").setLevel(logging.WARNING)
    policy = TargetingPolicy()

    quality = filter_quality(args.customers, args.seeds, args.prior_orders)
    gaps = knapsack_gaps(args.knapsack_cases)
    speed = timing(args.timing_customers, policy)

    pooled = quality.groupby("return_prior_orders")[["customers", "unprofitable", "flagged", "caught"]].sum()
    pooled["recall"] = pooled["caught"] / pooled["unprofitable"]
    pooled["precision"] = pooled["caught"] / pooled["flagged"]
    pooled["f1"] = 2 * pooled["recall"] * pooled["precision"] / (pooled["recall"] + pooled["precision"])
    default_k = TargetingPolicy().return_prior_orders
    print(f"\n### Profitability filter vs generated truth ({len(args.seeds)} logs of {args.customers:,} customers)\n")
    print(markdown(pooled.reset_index()))
    print(f"\nPer log, default return_prior_orders = {default_k:g}:\n")
    print(markdown(quality[quality["return_prior_orders"] == default_k].drop(columns="return_prior_orders")))
    print(f"\n### Campaign selection vs exact 0/1 knapsack (scipy milp), {gaps['cases']} cases of 30-200 items\n")
    print("| method | worst gap | mean gap | cases > 1% |\n|---|---|---|---|")
    print(f"| plain greedy by profit/spend (+ best single item) | {gaps['plain_worst']:.3%} | {gaps['plain_mean']:.4%} | {gaps['plain_over_1pct']} |")
    print(f"| greedy + exact 16-item core (select_campaign) | {gaps['worst']:.3%} | {gaps['mean']:.4%} | {gaps['over_1pct']} |")
    print(f"\n### Speed, {speed['customers']:,} score rows (best of 3)\n")
    print("| step | seconds |\n|---|---|")
    print(f"| decide (rank tiers) | {speed['decide_rank']:.2f} |")
    print(f"| decide (cut-point tiers) | {speed['decide_cuts']:.2f} |")
    print(f"| select_campaign, budget 5,000 ({speed['selected_5000']:,} selected) | {speed['select_5000']:.2f} |")
    print(f"| select_campaign, unlimited ({speed['selected_all']:,} selected) | {speed['select_all']:.2f} |")
    print(f"\nMachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}.")


if __name__ == "__main__":
    main()
