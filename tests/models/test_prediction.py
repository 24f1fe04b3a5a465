"""The one scoring path, from transaction rows: a customer's predictions do not depend on who else is scored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.scores import SCORE_COLUMNS
from features.synthetic import generate_transactions
from models.prediction import check_scorer, score_transactions
from models.scorer import PatronScorer
from targeting.tiers import tier_boundaries
from training.fit import TrainingConfig, fit_scorer

AS_OF = "2023-12-31"
POPULATION = 100_000
TIER_DEPENDENT = ("value_tier", "net_value", "exclude_from_spend", "exclude_reason", "winback_profit", "action", "channel", "incentive")
"""Columns that depend on the customer's tier, which the population defines (targeting.decide)."""


@pytest.fixture(scope="module")
def scorer() -> PatronScorer:
    return fit_scorer(generate_transactions(1500, seed=11).transactions, TrainingConfig(seed=5, n_threads=1))


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    return generate_transactions(POPULATION, seed=12).transactions


@pytest.fixture(scope="module")
def everyone(scorer, population):
    return score_transactions(population, scorer, AS_OF)


@pytest.mark.slow
def test_a_customer_alone_or_among_a_hundred_thousand_gets_the_same_predictions(scorer, population, everyone):
    """Issue 10.7: scoring is per customer; only the tier (and what depends on it) is the population's."""
    scores = everyone.scores
    assert len(scores) > 0.9 * POPULATION and scores["customer_id"].is_unique
    rng = np.random.default_rng(3)
    picked = sorted(rng.choice(scores["customer_id"].to_numpy(), size=25, replace=False).tolist())
    boundaries = tier_boundaries(scores["value_score"], scores["customer_id"], scorer.policy.tier_shares)
    whole = scores.set_index("customer_id")
    for customer_id in picked:  # 25 customers, each scored alone
        rows = population[population["customer_id"] == customer_id]
        alone = score_transactions(rows, scorer, AS_OF).scores
        assert alone["customer_id"].tolist() == [customer_id]
        expected = whole.loc[[customer_id]].reset_index()
        same = [c for c in SCORE_COLUMNS if c not in TIER_DEPENDENT]
        pd.testing.assert_frame_equal(alone[same], expected[same], check_exact=True)
        # with the population's boundaries, the tier and everything that follows from it agree too
        placed = score_transactions(rows, scorer, AS_OF, tier_boundaries=boundaries).scores
        pd.testing.assert_frame_equal(placed, expected[list(SCORE_COLUMNS)], check_exact=True)


@pytest.mark.slow
def test_tiers_are_the_configured_shares_of_the_scored_population(scorer, everyone):
    counts = everyone.scores["value_tier"].value_counts()
    n = len(everyone.scores)
    for tier, share in zip(("diamond", "gold", "silver", "regular"), scorer.policy.tier_shares, strict=True):
        assert abs(counts[tier] - share * n) <= 1


def test_rejected_rows_come_back_with_their_reasons_and_never_raise(scorer):
    rows = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "", "c"],
            "timestamp": ["2023-05-01", "2023-05-01", "2023-06-01", "2023-06-02", "not a date"],
            "amount": [10.0, 10.0, 0.0, 5.0, 4.0],
        }
    ).assign(category="books", discount=0.0, promo=False, cost=3.0)  # the fields the model's features need
    scored = score_transactions(rows, scorer, AS_OF)
    assert scored.scores["customer_id"].tolist() == ["a"]
    assert scored.rejects[["row", "reason"]].values.tolist() == [
        [1, "duplicate"], [2, "zero_amount"], [3, "missing_customer_id"], [4, "bad_timestamp"]
    ]
    nothing = score_transactions(rows.iloc[2:], scorer, AS_OF)
    assert nothing.scores.empty and list(nothing.scores.columns) == list(SCORE_COLUMNS)
    assert len(nothing.rejects) == 3


def test_check_scorer_refuses_a_model_that_cannot_score(scorer, tmp_path):
    assert list(check_scorer(scorer).columns) == list(SCORE_COLUMNS)
    broken = PatronScorer.load(scorer.save(tmp_path / "scorer"))
    broken.churn_features = broken.churn_features[:-1]
    with pytest.raises(Exception, match="cannot score its example transactions"):
        check_scorer(broken)
