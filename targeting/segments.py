"""Segment tables of a scores frame: customers, value and risk per value tier x lifecycle stage."""

from __future__ import annotations

import pandas as pd

from targeting.policy import STAGES, TIERS


def tier_stage_matrix(scores: pd.DataFrame) -> pd.DataFrame:
    """Customers, predicted CLV (total and mean) and mean churn risk per value tier x lifecycle stage."""
    # Series, not bare Categoricals: pandas reads a list of as many arrays as the frame has rows (two
    # customers, two keys) as one key of labels, and fails
    tier = pd.Series(pd.Categorical(scores["value_tier"], categories=list(TIERS), ordered=True), index=scores.index)
    stage = pd.Series(pd.Categorical(scores["lifecycle_stage"], categories=list(STAGES), ordered=True), index=scores.index)
    grouped = scores.groupby([tier, stage], observed=True)
    table = pd.DataFrame(
        {
            "customers": grouped.size(),
            "clv_total": grouped["clv"].sum(),
            "clv_mean": grouped["clv"].mean(),
            "churn_risk_mean": grouped["churn_probability"].mean(),
        }
    )
    table.index.names = ["value_tier", "lifecycle_stage"]
    return table.reset_index()
