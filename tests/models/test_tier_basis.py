"""PATRON_TIER_BASIS=lower_bound and the spend-rate value source: what value_score and the tiers rank."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.scorer import PatronScorer
from models.value import spend_rate
from patron.settings import Settings
from targeting.policy import TargetingPolicy
from training.fit import TrainingConfig, fit_scorer

AS_OF = "2023-12-31"
CONFIG = TrainingConfig(seed=5, n_threads=1)




@pytest.fixture(scope="module")
def expected(synthetic: pd.DataFrame) -> PatronScorer:
    return fit_scorer(synthetic, CONFIG)


@pytest.fixture(scope="module")
def conservative(synthetic: pd.DataFrame) -> PatronScorer:
    return fit_scorer(synthetic, CONFIG, policy=TargetingPolicy(tier_basis="lower_bound"))


def test_the_setting_reaches_the_policy():
    assert TargetingPolicy.from_settings(Settings(tier_basis="lower_bound")).tier_basis == "lower_bound"
    assert Settings().tier_basis == "expected"
    with pytest.raises(ValueError, match="tier_basis"):
        TargetingPolicy(tier_basis="median")


def test_lower_bound_ranks_tiers_by_the_low_end_of_the_clv_interval(expected, conservative, features):
    plain = expected.score(features, AS_OF)
    low = conservative.score(features, AS_OF)
    np.testing.assert_allclose(plain["value_score"], plain["clv"])
    np.testing.assert_allclose(low["value_score"], low["clv_low"])
    np.testing.assert_allclose(low["clv"], plain["clv"])  # the same models; only the ranking changes
    diamonds = plain["value_tier"] == "diamond"
    assert diamonds.sum() == (low["value_tier"] == "diamond").sum()  # shares are kept
    assert (diamonds != (low["value_tier"] == "diamond")).any()  # and the members change


def test_lower_bound_one_customer_gets_the_batch_tier(conservative, features):
    boundaries = conservative.training_tier_boundaries()
    batch = conservative.score(features, AS_OF, tier_boundaries=boundaries)
    for position in (0, 5, 99):
        alone = conservative.score(features.iloc[[position]], AS_OF, tier_boundaries=boundaries)
        pd.testing.assert_frame_equal(alone, batch.iloc[[position]].reset_index(drop=True))


def test_the_spend_rate_source_ranks_by_past_spend_per_horizon(synthetic, features):
    scorer = fit_scorer(synthetic, CONFIG, value_source="spend_rate")
    scores = scorer.score(features, AS_OF)
    rate = spend_rate(features["net_spend"].to_numpy(), features["tenure_days"].to_numpy(), CONFIG.churn_horizon_days)
    np.testing.assert_allclose(scores["value_score"].to_numpy(), rate)
    # a week-old customer is not ranked by a week's spend multiplied up to the horizon
    assert spend_rate(np.array([100.0]), np.array([7.0]), 90)[0] == pytest.approx(100.0)
    assert spend_rate(np.array([100.0]), np.array([180.0]), 90)[0] == pytest.approx(50.0)
