"""The demo's tables: the tier x stage matrix and the data summary lines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jobs.load import data_summary_lines
from targeting.segments import tier_stage_matrix


def test_tier_stage_matrix_orders_tiers_and_stages_and_sums_per_cell():
    rng = np.random.default_rng(3)
    n = 500
    scores = pd.DataFrame(
        {
            "value_tier": rng.choice(["regular", "gold", "diamond", "silver"], n),
            "lifecycle_stage": rng.choice(["lost", "new", "active", "at_risk", "sleeping"], n),
            "clv": rng.gamma(2.0, 20.0, n),
            "churn_probability": rng.uniform(0, 1, n),
        }
    )
    table = tier_stage_matrix(scores)
    tiers = list(table["value_tier"].astype(str))
    assert tiers == sorted(tiers, key=["diamond", "gold", "silver", "regular"].index)
    assert table["customers"].sum() == n
    assert table["clv_total"].sum() == pytest.approx(scores["clv"].sum())
    cell = scores[(scores.value_tier == "gold") & (scores.lifecycle_stage == "at_risk")]
    row = table[(table.value_tier == "gold") & (table.lifecycle_stage == "at_risk")].iloc[0]
    assert row["customers"] == len(cell)
    assert row["churn_risk_mean"] == pytest.approx(cell["churn_probability"].mean())
    assert row["clv_mean"] == pytest.approx(cell["clv"].mean())


def test_data_summary_lines_show_rejects_by_reason_and_dates():
    summary = {
        "rows_read": 1200,
        "rows_accepted": 1000,
        "rows_rejected": 200,
        "rejected_by_reason": {"missing_customer_id": 150, "duplicate": 50},
        "customers": 90,
        "first_timestamp": "2011-01-04T08:26:00",
        "last_timestamp": "2011-12-09T12:50:00",
    }
    lines = data_summary_lines(summary)
    assert lines[0].startswith("rows read") and lines[0].endswith("1,200")
    assert any(line.strip().startswith("missing_customer_id") and line.endswith("150") for line in lines)
    assert lines[-1].endswith("2011-01-04 .. 2011-12-09")
