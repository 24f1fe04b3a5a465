"""Uplift learned from generated campaigns: recovers the true stage uplift, shrinks thin stages to defaults."""

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError
from features.synthetic import generate_transactions
from targeting.campaign_report import read_assignments
from targeting.policy import STAGES, TargetingPolicy
from targeting.simulated_campaigns import simulate_campaigns
from training.campaign_learning import MEASURED, learn_uplift, shrink

POLICY = TargetingPolicy()


@pytest.fixture(scope="module")
def world():
    data = generate_transactions(20_000, seed=5)
    return simulate_campaigns(data, 4, control_share=0.5, seed=5)


@pytest.fixture(scope="module")
def learned(world):
    return learn_uplift(read_assignments(world.assignments), world.transactions, POLICY)


def test_learned_stage_uplift_is_within_its_interval_of_the_truth(learned, world):
    table = learned.table.set_index("lifecycle_stage")
    truth = world.assignments.groupby("lifecycle_stage")["true_uplift"].mean()
    measured = table[table["source"] == MEASURED]
    assert len(measured) >= 4
    inside = (measured["learned_low"] <= truth[measured.index]) & (truth[measured.index] <= measured["learned_high"])
    # 90% intervals on 4-5 stages: at most one miss expected (P(2+ misses of 5) = 0.08)
    assert inside.sum() >= len(measured) - 1


def test_the_policy_carries_the_measured_uplift(learned):
    policy = learned.policy
    assert set(policy.measured_uplift) == set(learned.table.loc[learned.table["source"] == MEASURED, "lifecycle_stage"])
    for stage, value in zip(learned.table["lifecycle_stage"], learned.table["learned"], strict=True):
        assert policy.uplift[stage] == pytest.approx(value)
    assert TargetingPolicy.from_dict(policy.to_dict()) == policy


def test_thin_data_stays_near_the_default_and_rich_data_follows_it():
    estimates = pd.DataFrame(
        {
            "lifecycle_stage": ["active", "lost"],
            "campaigns": [3, 1],
            "customers_treatment": [50_000, 40],
            "customers_control": [50_000, 40],
            "estimate": [0.05, 0.20],
            "standard_error": [0.001, 0.3],
        }
    )
    table = shrink(estimates, POLICY).set_index("lifecycle_stage")
    assert table.loc["active", "learned"] == pytest.approx(0.05, abs=0.002)
    assert abs(table.loc["lost", "learned"] - POLICY.uplift["lost"]) < 0.05
    assert (table.loc[["new", "sleeping", "at_risk"], "source"] == "default").all()
    assert table.loc["new", "learned"] == POLICY.uplift["new"]
    assert np.isfinite(table["learned"]).all() and list(table.index) == list(STAGES)


def test_no_measurable_campaign_is_one_line(world):
    early = world.transactions[world.transactions["timestamp"] < pd.Timestamp(world.assignments["send_date"].min())]
    with pytest.raises(DataError, match="no campaign could be measured"):
        learn_uplift(read_assignments(world.assignments), early, POLICY)
