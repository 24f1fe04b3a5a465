"""`patron generate`: a synthetic transaction log with its ground truth, and optionally past campaigns with true uplift."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.io import write_table
from features.synthetic import SyntheticData, generate_transactions
from targeting.policy import TargetingPolicy
from targeting.simulated_campaigns import simulate_campaigns


@dataclass(frozen=True)
class GeneratedFiles:
    """The generated data and where its tables went (`assignments` only with simulated campaigns)."""

    data: SyntheticData
    transactions: pd.DataFrame
    log_path: Path
    truth_path: Path
    assignments: pd.DataFrame | None = None
    assignments_path: Path | None = None


def truth_path_for(out: str | Path) -> Path:
    """Where the ground truth of a log written to `out` goes by default: `<stem>.truth.parquet` beside it."""
    path = Path(out)
    return path.with_name(f"{path.name.split('.')[0]}.truth.parquet")


def write_synthetic(
    customers: int,
    out: str,
    *,
    seed: int,
    start: str,
    end: str,
    truth_out: str | None = None,
    campaigns: int = 0,
    campaigns_out: str | None = None,
    window_days: int = 30,
    control_share: float = 0.1,
    policy: TargetingPolicy | None = None,
) -> GeneratedFiles:
    """Generate `customers` customers' transactions and write the log, its ground truth and (with
    `campaigns` > 0) the simulated campaigns' assignment file with each customer's true uplift."""
    data = generate_transactions(customers, seed=seed, start=start, end=end)
    transactions = data.transactions
    assignments = assignments_path = None
    if campaigns > 0 and campaigns_out is not None:
        simulated = simulate_campaigns(
            data, campaigns, window_days=window_days, control_share=control_share, seed=seed,
            policy=policy or TargetingPolicy(),
        )
        transactions, assignments = simulated.transactions, simulated.assignments
        assignments_path = write_table(assignments, campaigns_out)
    log_path = write_table(transactions, out)
    truth_path = write_table(data.customers, truth_out or truth_path_for(out), index=True)
    return GeneratedFiles(data, transactions, log_path, truth_path, assignments, assignments_path)
