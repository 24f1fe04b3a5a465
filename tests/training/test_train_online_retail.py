"""The whole training pipeline on the real UCI Online Retail log: the churn model must beat the baselines."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from realdata import ONLINE_RETAIL_MAP

from features import load_transactions
from training.train import TrainResult, train

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

BASELINES = ["recency", "palive", "rfm"]


@pytest.fixture(scope="module")
def retail_transactions(online_retail_path) -> pd.DataFrame:
    """Online Retail through the transaction contract (cancelled invoices are the returns)."""
    return load_transactions(online_retail_path, mapping=ONLINE_RETAIL_MAP).transactions


@pytest.fixture(scope="module")
def result(retail_transactions, tracking_uri, settings) -> TrainResult:
    return train(retail_transactions, settings=settings, tracking_uri=tracking_uri, experiment="online-retail")


def test_the_out_of_time_design_on_online_retail(result):
    plan = result.plan
    assert plan.data_end == pd.Timestamp("2011-12-09")
    assert plan.holdout_as_of == pd.Timestamp("2011-09-10")
    assert result.metrics["holdout_customers"] == 3370


def test_the_churn_model_beats_every_baseline_on_online_retail(result):
    logged = mlflow.MlflowClient(result.tracking_uri).get_run(result.run_id).data.metrics
    for baseline in BASELINES:
        assert logged["churn_auc"] > logged[f"baseline_{baseline}_churn_auc"], baseline
    # the hardest baseline here is the RFM score (0.7383 on this holdout; benchmarks/RESULTS.md)
    assert logged["baseline_rfm_churn_auc"] == pytest.approx(0.7383, abs=5e-4)
    # churn inputs are what a purchase on the as-of day moves one way (training.fit.churn_inputs)
    assert "recent_wait_days" in result.scorer.churn_features and "gap_last" not in result.scorer.churn_features


# Golden figures of Online Retail's reported holdout (seed 42, one thread;
# `benchmarks/bench_quality.py --data retail --seeds 42,1,2,3`, benchmarks/RESULTS.md). Spread over seeds
# 1, 2, 3 and 42: `logistic` chosen on all four (inner AUC 0.7574 against 0.7526-0.7556 for the best
# LightGBM level and the blend), churn AUC 0.7409 on all four (tolerance 0.003, as for CDNOW); value
# Spearman 0.5211 / 0.5328 / 0.5298 / 0.5302 (tolerance 0.015 > the 0.0117 spread); coverage identical.
# The intervals under-cover here: the levels calibrated on (E-2H, E-H] meet a Christmas quarter in
# (E-H, E] whose shop-wide rate is 1.31x the model's, against at most 1.13x in the four windows 12
# months of history show (rate_sd 0.069; RESULTS.md). The randomized PIT coverage of the distributions
# at the nominal levels is near nominal (`interval_pit_coverage_*`, 0.005 for solver noise as above).
GOLDEN_CHURN_MODEL = "logistic"
GOLDEN = {
    "churn_auc": (0.7409, 0.003),
    "value_spearman": (0.5211, 0.015),
    "interval_coverage_purchases_90": (0.8110, 0.005),
    "interval_coverage_spend_90": (0.8110, 0.005),
    "interval_coverage_purchases_80": (0.7448, 0.005),
    "interval_coverage_spend_80": (0.6875, 0.005),
    "interval_pit_coverage_purchases_90": (0.8765, 0.005),
    "interval_pit_coverage_spend_90": (0.8909, 0.005),
    "interval_pit_coverage_purchases_80": (0.7654, 0.005),
    "interval_pit_coverage_spend_80": (0.7572, 0.005),
}


def test_the_holdout_figures_hold_their_golden_values(result):
    logged = mlflow.MlflowClient(result.tracking_uri).get_run(result.run_id).data.metrics
    for name, (value, tolerance) in GOLDEN.items():
        assert logged[name] == pytest.approx(value, abs=tolerance), name
    assert result.choice.churn_level == GOLDEN_CHURN_MODEL
