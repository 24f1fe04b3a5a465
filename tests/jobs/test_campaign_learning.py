"""Uplift learned from generated campaigns: recovers the true stage uplift, shrinks thin stages to defaults."""

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError
from features.synthetic import generate_transactions
from targeting.campaign_report import read_assignments
from targeting.policy import STAGES, TIERS, TargetingPolicy
from targeting.simulated_campaigns import simulate_campaigns
from training.campaign_learning import (
    ALL,
    MEASURED,
    between_variance,
    learn_uplift,
    shrink,
    shrink_tiers,
)
from training.uplift_model import HOLDOUT_SHARE, campaign_features, held_out_rows

POLICY = TargetingPolicy()


@pytest.fixture(scope="module")
def world():
    data = generate_transactions(20_000, seed=5)
    return simulate_campaigns(data, 4, control_share=0.5, seed=5)


@pytest.fixture(scope="module")
def learned(world):
    return learn_uplift(read_assignments(world.assignments), world.transactions, POLICY)


def test_learned_stage_uplift_is_within_its_interval_of_the_truth(learned, world):
    table = learned.table[learned.table["value_tier"] == ALL].set_index("lifecycle_stage")
    truth = world.assignments.groupby("lifecycle_stage")["true_uplift"].mean()
    measured = table[table["source"] == MEASURED]
    assert len(measured) >= 4
    inside = (measured["learned_low"] <= truth[measured.index]) & (truth[measured.index] <= measured["learned_high"])
    # 90% intervals on 4-5 stages: at most one miss expected (P(2+ misses of 5) = 0.08)
    assert inside.sum() >= len(measured) - 1


def test_learned_tier_uplift_is_within_its_interval_of_the_truth(learned, world):
    tiers = learned.table[learned.table["value_tier"] != ALL].set_index(["lifecycle_stage", "value_tier"])
    truth = world.assignments.groupby(["lifecycle_stage", "value_tier"])["true_uplift"].mean()
    assert len(tiers) >= 15
    inside = (tiers["learned_low"] <= truth[tiers.index]) & (truth[tiers.index] <= tiers["learned_high"])
    # Empirical-Bayes intervals cover on average over the cells, not in each (a cell far from its stage
    # is pulled toward it): 14 of 19 here; at least 70% asked
    assert inside.mean() >= 0.7
    # what shrinkage promises: closer to the truth than the cells' own estimates, in mean squared error
    error = ((tiers["learned"] - truth[tiers.index]) ** 2).mean()
    raw = ((tiers["estimate"] - truth[tiers.index]) ** 2).mean()
    assert error < 0.7 * raw


def test_the_policy_carries_the_measured_uplift(learned):
    policy = learned.policy
    stages = learned.table[learned.table["value_tier"] == ALL]
    assert set(policy.measured_uplift) == set(stages.loc[stages["source"] == MEASURED, "lifecycle_stage"])
    for stage, value in zip(stages["lifecycle_stage"], stages["learned"], strict=True):
        assert policy.uplift[stage] == pytest.approx(value)
    tiers = learned.table[learned.table["value_tier"] != ALL]
    for stage, tier, value in zip(tiers["lifecycle_stage"], tiers["value_tier"], tiers["learned"], strict=True):
        assert policy.tier_uplift[f"{stage}:{tier}"] == pytest.approx(value)
        assert policy.uplift_sources()[stage]["tiers"][tier] == {"uplift": pytest.approx(value), "source": MEASURED}
    assert TargetingPolicy.from_dict(policy.to_dict()) == policy


def test_dersimonian_laird_by_hand():
    # y = (0, 0.1), se = (0.02, 0.02): w = 2500 each, ybar = 0.05, Q = 2 * 2500 * 0.0025 = 12.5,
    # C = 5000 - 2 * 2500**2 / 5000 = 2500, tau^2 = (12.5 - 1) / 2500 = 0.0046
    assert between_variance(np.array([0.0, 0.1]), np.array([0.02, 0.02])) == pytest.approx(0.0046)
    # tiers no further apart than their noise: no between-tier spread, every tier gets its stage's figure
    assert between_variance(np.array([0.05, 0.051]), np.array([0.02, 0.02])) == 0.0
    assert between_variance(np.array([0.05]), np.array([0.02])) == 0.0


def test_tiers_alike_take_their_stage_and_tiers_apart_follow_their_data():
    stages = shrink(pd.DataFrame({"lifecycle_stage": ["active"], "campaigns": [2], "customers_treatment": [9000],
                                  "customers_control": [9000], "estimate": [0.05], "standard_error": [0.003]}), POLICY)
    def tiers(estimates):
        return pd.DataFrame({"lifecycle_stage": "active", "value_tier": list(TIERS), "campaigns": 2, "customers_treatment": 2000,
                             "customers_control": 2000, "estimate": estimates, "standard_error": 0.006})
    alike = shrink_tiers(tiers([0.050, 0.052, 0.049, 0.051]), stages)
    stage_value = stages.set_index("lifecycle_stage").loc["active", "learned"]
    assert np.allclose(alike["learned"], stage_value) and (alike["spread"] == 0).all()
    apart = shrink_tiers(tiers([0.00, 0.03, 0.07, 0.10]), stages)
    assert apart["learned"].is_monotonic_increasing
    assert apart["learned"].iloc[0] < 0.01 and apart["learned"].iloc[-1] > 0.09


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
    assert (table["value_tier"] == ALL).all()
    assert table.loc["active", "learned"] == pytest.approx(0.05, abs=0.002)
    assert abs(table.loc["lost", "learned"] - POLICY.uplift["lost"]) < 0.05
    assert (table.loc[["new", "sleeping", "at_risk"], "source"] == "default").all()
    assert table.loc["new", "learned"] == POLICY.uplift["new"]
    assert np.isfinite(table["learned"]).all() and list(table.index) == list(STAGES)


def test_no_measurable_campaign_is_one_line(world):
    early = world.transactions[world.transactions["timestamp"] < pd.Timestamp(world.assignments["send_date"].min())]
    with pytest.raises(DataError, match="no campaign could be measured"):
        learn_uplift(read_assignments(world.assignments), early, POLICY)


def test_generated_types_follow_the_visible_traits(world):
    members = world.assignments
    # expected_uplift (the traits' expectation) is unbiased for the drawn true uplift: deciles agree
    decile = pd.qcut(members["expected_uplift"], 10, labels=False, duplicates="drop")
    by = members.groupby(decile)[["expected_uplift", "true_uplift"]].mean()
    assert np.allclose(by["expected_uplift"], by["true_uplift"], atol=0.03)
    assert by["true_uplift"].iloc[-1] > by["true_uplift"].iloc[0] + 0.3  # the traits separate who responds


def test_the_per_customer_model_wins_where_the_traits_tell_and_is_chosen(learned, world):
    choice = learned.choice
    assert choice is not None and choice.chosen == "customer_model"
    m = choice.metrics
    assert m["customer_model_qini_auc"] > m["segment_table_qini_auc"]
    assert m["customer_model_uplift_at_30"] > m["segment_table_uplift_at_30"]
    # its uplift ranks customers like the truth does
    assignments = read_assignments(world.assignments)
    features = campaign_features(assignments, world.transactions)
    predicted = learned.customer_model.predict(features)
    assert np.corrcoef(predicted, world.assignments["expected_uplift"])[0, 1] > 0.8


def test_few_campaign_customers_keep_the_table(world):
    few = read_assignments(world.assignments).groupby("group").head(400)
    result = learn_uplift(few, world.transactions, POLICY)
    assert result.choice is not None and result.choice.chosen == "segment_table" and result.customer_model is None


def test_held_out_customers_keep_all_their_campaign_rows_on_one_side():
    """A customer in several campaigns is learned on or judged on, never both; the draw ignores row order."""
    ids = pd.Series([f"C{i % 3000:05d}" for i in range(9000)])  # 3,000 customers, three campaign rows each
    held = held_out_rows(ids, seed=42)
    sides = pd.Series(held).groupby(ids.to_numpy()).nunique()
    assert (sides == 1).all()
    assert abs(held.reshape(3, 3000)[0].mean() - HOLDOUT_SHARE) < 0.03  # 3 standard errors of a share of 3,000
    order = np.random.default_rng(0).permutation(len(ids))
    np.testing.assert_array_equal(held_out_rows(ids.iloc[order].reset_index(drop=True), seed=42), held[order])
