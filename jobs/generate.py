"""patron generate: a synthetic log with its ground truth, and optionally past campaigns with true uplift."""

from __future__ import annotations

from pathlib import Path

from features.io import write_table
from features.synthetic import generate_transactions
from features.synthetic_campaigns import simulate_campaigns
from targeting.policy import TargetingPolicy


def generate_job(
    customers: int,
    out: str,
    *,
    seed: int,
    start: str,
    end: str,
    truth: str | None,
    campaigns: int,
    campaigns_out: str | None,
    window_days: int,
    control_share: float,
    policy: TargetingPolicy,
) -> list[str]:
    """Write the log, the truth and (with `campaigns` > 0) the campaigns' assignment file; lines to print."""
    data = generate_transactions(customers, seed=seed, start=start, end=end)
    transactions = data.transactions
    lines = []
    if campaigns > 0 and campaigns_out is not None:
        simulated = simulate_campaigns(data, campaigns, window_days=window_days, control_share=control_share, seed=seed, policy=policy)
        transactions = simulated.transactions
        written = write_table(simulated.assignments, campaigns_out)
        groups = simulated.assignments["group"].value_counts()
        lines.append(
            f"campaigns: {campaigns} past campaigns, {groups.get('treatment', 0):,} treated and {groups.get('control', 0):,} "
            f"control customers, true uplift {simulated.assignments['true_uplift'].mean():.4f} on average -> {written}"
        )
    log_path = write_table(transactions, out)
    path = Path(out)
    truth_path = write_table(data.customers, truth or path.with_name(f"{path.name.split('.')[0]}.truth.parquet"), index=True)
    return [
        f"transactions: {len(transactions):,} rows -> {log_path}",
        f"ground truth: {len(data.customers):,} customers -> {truth_path}",
        f"unprofitable customers (truth): {data.customers['unprofitable'].mean():.1%}",
        *lines,
    ]
