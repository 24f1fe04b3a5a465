"""The demo's campaign loop: a generated shop's past campaigns are reported and learned from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from features.io import write_table
from features.synthetic import generate_transactions
from targeting.campaign_report import ALL, read_assignments, report_campaigns
from targeting.policy import TargetingPolicy
from targeting.simulated_campaigns import simulate_campaigns
from training.campaign_learning import learn_uplift

DEMO_CUSTOMERS = 10_000
DEMO_CAMPAIGNS = 6
DEMO_CONTROL_SHARE = 0.5


def show_campaign_loop(settings: Any, out_dir: str | Path, echo: Callable[[str], None] = print) -> Path:
    """Simulate past campaigns on a generated shop, report each against its control, learn the stage uplift."""
    policy = TargetingPolicy.from_settings(settings)
    data = generate_transactions(DEMO_CUSTOMERS, seed=settings.seed)
    world = simulate_campaigns(data, DEMO_CAMPAIGNS, window_days=settings.campaign_window_days, control_share=DEMO_CONTROL_SHARE, seed=settings.seed, policy=policy)
    assignments = read_assignments(world.assignments)
    report = report_campaigns(
        assignments, world.transactions, margin_rate=policy.margin_rate, contact_costs=policy.contact_costs, window_days=settings.campaign_window_days, seed=settings.seed, detail=False
    )
    path = write_table(report.table, Path(out_dir) / "campaign_report.csv")
    overall = report.table[report.table["value_tier"] == ALL]
    truth = world.assignments[world.assignments["group"] == "treatment"].groupby("campaign_id")["true_uplift"].mean()
    shown = overall[["campaign_id", "customers_treatment", "customers_control", "incremental_conversion", "incremental_conversion_low", "incremental_conversion_high", "incremental_profit", "expected_incremental_profit"]]
    echo("")
    echo(f"== past campaigns of a generated shop ({DEMO_CUSTOMERS:,} customers), each against its control group")
    echo(shown.assign(true_uplift=shown["campaign_id"].map(truth)).to_string(index=False, float_format=lambda v: f"{v:,.4f}"))
    learned = learn_uplift(assignments, world.transactions, policy, window_days=settings.campaign_window_days)
    echo("")
    echo("== uplift per stage (shrunk toward the defaults) and stage x tier (toward its stage) learned from them")
    echo(learned.table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if learned.choice is not None:
        echo(learned.lines()[-1])
    echo(f"campaign report {path}")
    return path
