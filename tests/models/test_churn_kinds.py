"""The logistic and blend churn models inside a scorer: exact reasons, one customer = the batch, saved as JSON."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

# the scorer's behavioural test, run here on the logistic and blend scorers (this module's fixtures)
from test_scorer import test_a_more_recent_purchase_never_raises_the_churn_probability  # noqa: F401

from models.blend_churn import RFM_INPUTS, BlendChurnModel, mid_cdf_knots
from models.churn import _choose_calibration
from models.linear_churn import LogisticChurnModel
from models.prediction import score_transactions
from models.scorer import PatronScorer
from training.fit import TrainingConfig, fit_scorer

AS_OF = "2023-12-31"




@pytest.fixture(scope="module", params=["logistic", "blend"])
def scorer(request, synthetic: pd.DataFrame) -> PatronScorer:
    return fit_scorer(synthetic, TrainingConfig(seed=5, n_threads=1, churn_family=request.param))


def test_the_scorer_holds_the_requested_kind(scorer):
    kinds = {"logistic": LogisticChurnModel, "blend": BlendChurnModel}
    assert any(isinstance(scorer.churn_model, kind) for kind in kinds.values())


def test_one_customer_scored_alone_gets_the_batch_number(scorer, features):
    batch = scorer.score(features, AS_OF, tier_boundaries=scorer.training_tier_boundaries())
    for position in (0, 17, len(features) - 1):
        alone = scorer.score(features.iloc[[position]], AS_OF, tier_boundaries=scorer.training_tier_boundaries())
        row = batch.iloc[[position]].reset_index(drop=True)
        pd.testing.assert_frame_equal(alone, row)


def test_saved_as_json_and_text_only_and_loaded_to_the_same_scores(scorer, features, tmp_path):
    folder = scorer.save(tmp_path / "scorer")
    assert all(p.suffix in {".json", ".txt"} for p in folder.rglob("*") if p.is_file())
    loaded = PatronScorer.load(folder)
    assert type(loaded.churn_model) is type(scorer.churn_model)
    pd.testing.assert_frame_equal(loaded.score(features, AS_OF), scorer.score(features, AS_OF))


def test_extreme_customers_get_finite_probabilities_and_reasons(scorer, features):
    extreme = features.head(4).copy()
    extreme.iloc[0, extreme.columns.get_indexer(["frequency", "order_count", "gross_spend", "net_spend"])] = [1e5, 1e5, 1e9, 1e9]
    extreme.iloc[1, extreme.columns.get_indexer(["days_since_last", "recency", "T", "tenure_days"])] = [0.0, 0.0, 0.0, 0.0]
    extreme.iloc[2, extreme.columns.get_indexer(["gap_mean", "overdue_ratio", "gap_last"])] = [1e6, 1e6, 1e6]
    scores = scorer.score(extreme, AS_OF)
    assert np.isfinite(scores["churn_probability"]).all()
    assert ((scores["churn_probability"] > 0) & (scores["churn_probability"] < 1)).all()


def test_logistic_reasons_are_the_exact_terms_of_the_log_odds(synthetic, features):
    scorer = fit_scorer(synthetic, TrainingConfig(seed=5, n_threads=1, churn_family="logistic"))
    model = scorer.churn_model
    assert isinstance(model, LogisticChurnModel)
    x = scorer.model_outputs(features)  # BTYD outputs the model reads
    frame = pd.concat([features.drop(columns=x.columns, errors="ignore"), x], axis=1)
    terms = model.contributions(frame)
    p = model.predict_proba(frame)
    np.testing.assert_allclose(model.intercept_ + terms.sum(axis=0), logit(p), rtol=0, atol=1e-9)
    reasons = model.reasons(frame, top=3)
    names = np.asarray(model.feature_names_)
    first = names[np.argmax(terms, axis=0)]
    positive = terms.max(axis=0) > 0
    assert (reasons["churn_reason_1"].to_numpy()[positive] == first[positive]).all()
    assert (reasons["churn_reason_1"].to_numpy()[~positive] == "").all()


def test_logistic_coefficients_keep_their_monotone_signs():
    rng = np.random.default_rng(3)
    x = pd.DataFrame({"days_since_last": rng.exponential(50, 4000), "frequency": rng.poisson(2, 4000).astype(float)})
    # labels that fall with days_since_last: a constraint of +1 must drop the feature, not flip its sign
    y = (rng.random(4000) < 1 / (1 + np.exp((x["days_since_last"] - 50) / 20))).astype(int)
    model = LogisticChurnModel(monotone_constraints={"days_since_last": 1}).fit(x, y)
    assert "days_since_last" not in model.feature_names_
    free = LogisticChurnModel(monotone_constraints={"days_since_last": 0}).fit(x, y)
    assert free.coef_[free.feature_names_.index("days_since_last")] < 0


def test_the_blend_learns_its_cdfs_and_map_on_the_rows_the_booster_held_out(synthetic):
    scorer = fit_scorer(synthetic, TrainingConfig(seed=5, n_threads=1, churn_family="blend"))
    blend = scorer.churn_model
    assert isinstance(blend, BlendChurnModel)
    rng = np.random.default_rng(0)
    n = 3000
    x = pd.DataFrame({c: rng.exponential(30, n) for c in blend.feature_names_})
    y = rng.integers(0, 2, n)
    groups = np.arange(n) // 2
    refit = BlendChurnModel(blend.booster, seed=5).fit(x, y, groups)
    held = blend.booster.validation_rows(y, groups)
    assert 0.15 * n < held.size < 0.25 * n
    risk = blend.booster.predict_proba(x)
    assert refit.risk_cdf_ == mid_cdf_knots(risk[held])
    assert refit.risk_cdf_ != mid_cdf_knots(risk)
    raw = refit._raw(risk[held], x[list(RFM_INPUTS)].to_numpy(dtype=float)[held])
    assert refit.calibration_map_ == _choose_calibration("auto", raw, y[held].astype(float), 5)[1]


def test_one_customer_through_the_one_scoring_path_gets_the_batch_number(scorer, synthetic):
    """What the API does for a request (its rows alone, the training boundaries) against the whole batch."""
    boundaries = scorer.training_tier_boundaries()
    batch = score_transactions(synthetic, scorer, AS_OF, tier_boundaries=boundaries).scores.set_index("customer_id")
    for customer in synthetic["customer_id"].drop_duplicates().iloc[[0, 50, 400]]:
        rows = synthetic[synthetic["customer_id"] == customer]
        alone = score_transactions(rows, scorer, AS_OF, tier_boundaries=boundaries).scores.set_index("customer_id")
        pd.testing.assert_frame_equal(alone, batch.loc[[customer]])
