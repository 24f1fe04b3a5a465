"""Holdout metrics: known values on small hand-made cases, and the baselines' conventions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.evaluate import (
    calibrate_score,
    choose_value_source,
    churn_metrics,
    expected_calibration_error,
    lift_at,
    normalized_gini,
    rfm_score,
    top_capture,
    value_metrics,
)


def test_churn_metrics_of_a_perfect_and_a_reversed_score():
    y = np.array([0, 0, 0, 1, 1])
    perfect = churn_metrics(y, np.array([0.1, 0.2, 0.3, 0.8, 0.9]))
    assert perfect["churn_auc"] == 1.0 and perfect["churn_pr_auc"] == 1.0
    assert perfect["churn_lift_10"] == pytest.approx(1 / 0.4)
    reversed_ = churn_metrics(y, np.array([0.9, 0.8, 0.7, 0.2, 0.1]), prefix="baseline_x_")
    assert reversed_["baseline_x_churn_auc"] == 0.0
    assert reversed_["baseline_x_churn_brier"] > perfect["churn_brier"]


def test_ece_is_zero_when_rates_match_and_the_gap_otherwise():
    y = np.array([0] * 8 + [1] * 2)
    assert expected_calibration_error(y, np.full(10, 0.2)) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(10, 0.7)) == pytest.approx(0.5)


def test_lift_and_capture_take_the_top_share():
    y = np.array([1] + [0] * 9)
    assert lift_at(y, np.arange(10)[::-1].astype(float), 0.10) == pytest.approx(10.0)
    spend = np.array([100.0] + [0.0] * 9)
    assert top_capture(spend, np.arange(10)[::-1].astype(float), 0.10) == 1.0
    assert top_capture(spend, np.arange(10).astype(float), 0.20) == 0.0


def test_normalized_gini_is_one_for_the_perfect_order_and_negative_reversed():
    actual = np.array([5.0, 0.0, 3.0, 1.0])
    assert normalized_gini(actual, actual) == pytest.approx(1.0)
    assert normalized_gini(actual, -actual) < 0
    metrics = value_metrics(actual, actual * 2 + 1, prefix="regressor_")
    assert metrics["regressor_clv_spearman"] == pytest.approx(1.0)


def test_rfm_score_is_a_quintile_sum_and_best_customers_score_highest():
    features = pd.DataFrame(
        {
            "days_since_last": np.arange(10, dtype=float),
            "frequency": np.arange(10, dtype=float)[::-1],
            "gross_spend": np.arange(10, dtype=float)[::-1],
        }
    )
    score = rfm_score(features)
    assert score.min() >= 3 and score.max() <= 15
    assert score[0] == 15 and score[-1] == 3


def test_baseline_calibration_is_learned_on_training_labels_only():
    train_score = np.array([1.0, 2.0, 3.0, 4.0])
    train_y = np.array([0, 0, 1, 1])
    prob = calibrate_score(train_score, train_y, np.array([0.0, 10.0]))
    assert prob.tolist() == [0.0, 1.0]


def test_value_source_prefers_the_better_spearman():
    assert choose_value_source({"clv_spearman": 0.40, "regressor_clv_spearman": 0.30}) == "clv"
    assert choose_value_source({"clv_spearman": 0.40, "regressor_clv_spearman": 0.45}) == "regressor"
    three = {"clv_spearman": 0.40, "regressor_clv_spearman": 0.45, "spend_rate_clv_spearman": 0.46}
    assert choose_value_source(three) == "spend_rate"
    assert choose_value_source({**three, "spend_rate_clv_spearman": 0.45}) == "regressor"  # ties: the first listed
