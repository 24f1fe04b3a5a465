"""The tier x stage matrix for populations of any size, two customers included."""

from __future__ import annotations

import pandas as pd
import pytest

from targeting.segments import tier_stage_matrix


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_tier_stage_matrix_of_a_few_customers(n):
    scores = pd.DataFrame(
        {
            "value_tier": ["gold", "regular", "gold"][:n],
            "lifecycle_stage": ["active", "lost", "active"][:n],
            "clv": [10.0, 2.0, 30.0][:n],
            "churn_probability": [0.1, 0.9, 0.3][:n],
        }
    )
    table = tier_stage_matrix(scores)
    assert table["customers"].sum() == n
    gold = table[(table["value_tier"] == "gold") & (table["lifecycle_stage"] == "active")]
    if n:
        assert gold["clv_total"].tolist() == [10.0 if n < 3 else 40.0]
    if n >= 2:
        lost = table[table["lifecycle_stage"] == "lost"]
        assert lost["value_tier"].astype(str).tolist() == ["regular"] and lost["churn_risk_mean"].tolist() == [0.9]
