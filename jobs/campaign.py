"""`patron campaign`: choose whom to contact under a budget from a scores file, and write the list."""

from __future__ import annotations

import math

import pandas as pd

from core.errors import DataError
from features.io import read_table, write_table
from targeting.campaign import CampaignResult, select_campaign
from targeting.decide import ensure_decisions
from targeting.policy import TargetingPolicy


def read_scores_table(path: str) -> pd.DataFrame:
    """A scores file (Parquet, CSV, ...) as a frame with a customer_id column of strings."""
    frame = read_table(path)
    if "customer_id" not in frame.columns:
        raise DataError(f"scores file {path} has no customer_id column; write it with `patron score`")
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame


def run_campaign(scores: str, out: str, budget: float, policy: TargetingPolicy) -> CampaignResult:
    """Select a campaign under `budget` from a scores file and write the selected customers to `out`."""
    if not (math.isfinite(budget) and budget >= 0):
        raise ValueError(f"--budget must be a finite amount >= 0, got {budget}")
    # scores from `patron score` carry the decisions; a bare model output gets them here
    decisions = ensure_decisions(read_scores_table(scores), policy)
    result = select_campaign(decisions, budget, policy)
    write_table(result.selected, out)
    return result
