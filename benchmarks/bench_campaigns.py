"""Campaign benchmark: report intervals, the planner's promise and learned-uplift selection vs known truth.

    .venv/bin/python benchmarks/bench_campaigns.py [--customers 60000] [--campaigns 20] [--seed 42]

A shop is generated (`features.synthetic.generate_transactions`) with K past campaigns simulated on it
(`targeting.simulated_campaigns`: half of each campaign held back as control, customer types with known
`true_uplift`). Then:

1. Coverage: the report's 90% interval of incremental conversion (Newcombe) against the true mean uplift of
   each campaign's customers; a calibrated interval covers in about 90% of campaigns.
2. The planner's promise: uplift is learned (empirical Bayes) from the first half of the campaigns; for each
   campaign of the second half, the in-window expected incremental profit of its treatment group under the
   learned uplift, the defaults, and the old rule (response rates 0.65/0.65/0.30/0.20/0.08 taken as the
   effect of a contact) is set beside the report's realized 90% interval.
3. Selection at the same budget among the second half's customers: the oracle (true uplift), the ceiling
   (the uplift expected from the customer's traits: the best any learner can do), the per-customer
   model, the stage x tier table, the stage table (all learned on the first half), the old rule and
   random; realized true incremental profit = sum over the chosen of true_uplift x margin x true mean
   order value - contact cost, and the share of the gap between the old rule and the oracle each closes.

Prints a Markdown block for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time

import numpy as np
import pandas as pd

from core import defaults
from features.synthetic import generate_transactions
from models.uplift import CustomerUpliftModel
from targeting.campaign_report import ALL, campaign_outcomes, read_assignments, report_campaigns
from targeting.policy import TargetingPolicy
from targeting.simulated_campaigns import simulate_campaigns
from targeting.winback import email_uplift
from training.campaign_learning import learn_uplift
from training.uplift_model import campaign_features

OLD_RESPONSE_RATES = {"new": 0.65, "active": 0.65, "sleeping": 0.30, "at_risk": 0.20, "lost": 0.08}
"""The response rates Patron's planner used before uplift (the issue's `PATRON_RESPONSE_RATES`)."""
CONTACT_SHARE = 0.2
"""Budget of the selection comparison: enough to e-mail this share of the customers."""


def window_promise(assignments: pd.DataFrame, uplift: np.ndarray, policy: TargetingPolicy) -> pd.Series:
    """In-window expected incremental profit of each campaign's treatment group, given each customer's uplift."""
    mask = (assignments["group"] == "treatment").to_numpy()
    treated = assignments[mask]
    caused = pd.Series(np.asarray(uplift, dtype=float)[mask], index=treated.index)
    base = treated["lifecycle_stage"].map(policy.base_conversion).astype(float)
    profit = caused * policy.margin_rate * treated["avg_order"] - policy.contact_costs["email"] - (base + caused).clip(0, 1) * treated["incentive"]
    return profit.groupby(treated["campaign_id"]).sum()


def selection(population: pd.DataFrame, scores: dict[str, np.ndarray], cost: float, budget: float) -> dict[str, float]:
    """Realized true incremental profit of contacting, per rule, the best-scoring customers the budget buys."""
    k = int(budget // cost)
    true_value = population["true_uplift"].to_numpy() * population["true_margin"].to_numpy() - cost
    out = {}
    for name, score in scores.items():
        order = np.argsort(-score, kind="stable")
        chosen = order[: k][score[order[:k]] > cost]  # nobody whose expected gain does not pay the contact
        out[name] = float(true_value[chosen].sum())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=60_000)
    parser.add_argument("--campaigns", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    policy = TargetingPolicy()
    started = time.perf_counter()
    data = generate_transactions(args.customers, seed=args.seed)
    world = simulate_campaigns(data, args.campaigns, control_share=0.5, seed=args.seed, policy=policy)
    assignments = read_assignments(world.assignments)

    # 1. coverage of the true mean uplift
    report = report_campaigns(assignments, world.transactions, margin_rate=policy.margin_rate, contact_costs=policy.contact_costs, detail=False)
    overall = report.table[report.table["value_tier"] == ALL].set_index("campaign_id")
    truth = world.assignments.groupby("campaign_id")["true_uplift"].mean()
    covered = (overall["incremental_conversion_low"] <= truth) & (truth <= overall["incremental_conversion_high"])

    # 2. learned on the first half, promises checked on the second
    ids = sorted(overall.index)
    first, second = ids[: len(ids) // 2], ids[len(ids) // 2 :]
    learned = learn_uplift(assignments[assignments["campaign_id"].isin(first)], world.transactions, policy)
    later = world.assignments[world.assignments["campaign_id"].isin(second)].copy()
    later["avg_order"] = _past_average_order(world.transactions, later)
    features = campaign_features(read_assignments(later), world.transactions)
    stage, tier = later["lifecycle_stage"].astype(str), later["value_tier"].astype(str)
    planned = learned.customer_model.predict(features) if learned.customer_model is not None else email_uplift(stage, tier, learned.policy)
    promises = {
        f"learned uplift ({learned.choice.chosen if learned.choice else 'segment_table'})": window_promise(later, planned, policy),
        "learned stage x tier table": window_promise(later, email_uplift(stage, tier, learned.policy), policy),
        "default uplift": window_promise(later, email_uplift(stage, None, policy), policy),
        "old rule (response rates)": window_promise(later, stage.map(OLD_RESPONSE_RATES).to_numpy(dtype=float), policy),
    }
    low, high = overall.loc[second, "incremental_profit_low"], overall.loc[second, "incremental_profit_high"]
    realized = overall.loc[second, "incremental_profit"]

    # 3. selection at the same budget among the second half's customers (all of them, as if untreated)
    population = later.assign(true_margin=policy.margin_rate * data.customers.loc[later["customer_id"], "mean_order_value"].to_numpy())
    value = policy.margin_rate * population["avg_order"].to_numpy()
    rng = np.random.default_rng(args.seed)
    cost = policy.contact_costs["email"]
    budget = CONTACT_SHARE * len(population) * cost
    stage_only = dataclasses.replace(learned.policy, tier_uplift={})
    early = campaign_outcomes(assignments[assignments["campaign_id"].isin(first)], world.transactions, defaults.CAMPAIGN_WINDOW_DAYS)
    model = learned.customer_model or CustomerUpliftModel(seed=args.seed).fit(
        campaign_features(early, world.transactions), (early["group"] == "treatment").to_numpy(), early["bought"].to_numpy()
    )
    scores = {
        "oracle (true uplift)": population["true_uplift"].to_numpy() * population["true_margin"].to_numpy(),
        "ceiling (uplift expected from the traits)": population["expected_uplift"].to_numpy() * population["true_margin"].to_numpy(),
        "per-customer model (two-model LightGBM)": model.predict(features) * value,
        "learned stage x tier uplift": email_uplift(stage, tier, learned.policy) * value,
        "learned stage uplift": email_uplift(stage, None, stage_only) * value,
        "old rule (response rates)": population["lifecycle_stage"].map(OLD_RESPONSE_RATES).to_numpy(dtype=float) * value,
        "random": rng.random(len(population)) + cost,  # any order, everyone "pays"
    }
    chosen = selection(population, scores, cost, budget)
    elapsed = time.perf_counter() - started

    print(f"### Campaigns on generated data ({args.customers:,} customers, {args.campaigns} campaigns, half of each held back, seed {args.seed})")
    print()
    print(f"`.venv/bin/python benchmarks/bench_campaigns.py --customers {args.customers} --campaigns {args.campaigns} --seed {args.seed}` "
          f"({elapsed:.0f} s; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared with other jobs)")
    print()
    print(f"**Coverage**: the 90% interval of incremental conversion covers the true mean uplift in {int(covered.sum())} of {len(covered)} campaigns.")
    print()
    print("| campaign | treated | control | incremental conversion [90%] | true mean uplift | covered |")
    print("|---|---:|---:|---|---:|---|")
    for cid, row in overall.iterrows():
        print(f"| {cid} | {row.customers_treatment:,} | {row.customers_control:,} | {row.incremental_conversion:.4f} "
              f"[{row.incremental_conversion_low:.4f}, {row.incremental_conversion_high:.4f}] | {truth[cid]:.4f} | {'yes' if covered[cid] else 'no'} |")
    print()
    stages = learned.table[learned.table["value_tier"] == ALL].set_index("lifecycle_stage")
    stage_truth = world.assignments[world.assignments["campaign_id"].isin(first)].groupby("lifecycle_stage")["true_uplift"].mean()
    print(f"**Learned stage uplift** (campaigns {first[0]}..{first[-1]}) against the true mean uplift of those stages:")
    print()
    print("| stage | customers (T / C) | measured | learned [90%] | truth | inside |")
    print("|---|---:|---:|---|---:|---|")
    for stage, row in stages.iterrows():
        t = stage_truth.get(stage, np.nan)
        inside = row.learned_low <= t <= row.learned_high if row.source == "measured" else False
        print(f"| {stage} | {row.customers_treatment:,} / {row.customers_control:,} | {row.estimate:.4f} | {row.learned:.4f} "
              f"[{row.learned_low:.4f}, {row.learned_high:.4f}] | {t:.4f} | {'yes' if inside else 'no'} |")
    print()
    tiers = learned.table[learned.table["value_tier"] != ALL].set_index(["lifecycle_stage", "value_tier"])
    tier_truth = world.assignments[world.assignments["campaign_id"].isin(first)].groupby(["lifecycle_stage", "value_tier"])["true_uplift"].mean()
    t = tier_truth.reindex(tiers.index)
    inside_tiers = int(((tiers["learned_low"] <= t) & (t <= tiers["learned_high"])).sum())
    raw_error = float(np.sqrt(((tiers["estimate"] - t) ** 2).mean()))
    shrunk_error = float(np.sqrt(((tiers["learned"] - t) ** 2).mean()))
    print(f"**Learned stage x tier uplift**: within its 90% interval of the truth in {inside_tiers} of {len(tiers)} cells; "
          f"root mean squared error {shrunk_error:.4f} shrunk vs {raw_error:.4f} for the cells' own estimates.")
    print()
    print(f"**The planner's promise** on campaigns {second[0]}..{second[-1]} (in-window incremental profit of the treatment group):")
    print()
    print("| planner | inside the realized 90% interval | median promise / realized |")
    print("|---|---:|---:|")
    for name, promise in promises.items():
        promise = promise.reindex(second)
        inside = ((low <= promise) & (promise <= high)).sum()
        ratio = np.median(promise / realized.where(realized.abs() > 1e-9))
        print(f"| {name} | {inside} of {len(second)} | {ratio:.1f} |")
    print()
    print(f"**Selection at the same budget** ({budget:,.0f}: e-mails to {CONTACT_SHARE:.0%} of the {len(population):,} customers of campaigns "
          f"{second[0]}..{second[-1]}), realized true incremental profit:")
    print()
    print("| selection | true incremental profit | share of the oracle's | share of the gap (old rule to oracle) closed |")
    print("|---|---:|---:|---:|")
    oracle, old = chosen["oracle (true uplift)"], chosen["old rule (response rates)"]
    for name, value_ in chosen.items():
        print(f"| {name} | {value_:,.0f} | {value_ / oracle:.0%} | {(value_ - old) / (oracle - old):.0%} |")
    print()
    if learned.choice is not None:
        print(f"**Learner chosen** by `learn_uplift` on held-out customers of {first[0]}..{first[-1]}: `{learned.choice.chosen}` "
              f"({learned.choice.reason}).")
        print()
        print("| held-out measure | segment table | per-customer model |")
        print("|---|---:|---:|")
        m = learned.choice.metrics
        for measure in ("qini_auc", "uplift_at_30"):
            print(f"| {measure} | {m.get('segment_table_' + measure, float('nan')):.4f} | {m.get('customer_model_' + measure, float('nan')):.4f} |")


def _past_average_order(log: pd.DataFrame, later: pd.DataFrame) -> np.ndarray:
    """Average order value before each customer's send date (what a planner could see)."""
    orders = log.loc[~log["is_return"], ["customer_id", "timestamp", "amount"]].merge(later[["customer_id", "send_date"]], on="customer_id")
    orders = orders[orders["timestamp"] < pd.to_datetime(orders["send_date"])]
    return later["customer_id"].map(orders.groupby("customer_id")["amount"].mean()).fillna(0.0).to_numpy()


if __name__ == "__main__":
    main()
