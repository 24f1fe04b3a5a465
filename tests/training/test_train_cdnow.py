"""The whole training pipeline on the real CDNOW log, into a private sqlite store."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from core.scores import SCORE_COLUMNS
from models.pyfunc import load_scorer
from training.menu import CHURN_CHOICES, MAE_TIE_TOLERANCE
from training.train import TrainResult, train

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

PARAMS = ["bgnbd_r", "bgnbd_alpha", "gg_p", "gg_q", "gg_v", "fallbacks", "freq_monetary_corr"]
PARAMS += ["btyd_fit_customers", "btyd_fit_distinct_rows"]
PARAMS += ["btyd_model", "value_source", "churn_horizon_days", "churn_snapshots", "data_rows", "data_sha256"]
PARAMS += ["data_first_timestamp", "data_last_timestamp", "version_mlflow", "version_lightgbm", "version_lifetimes"]
CHURN = ["churn_auc", "churn_pr_auc", "churn_brier", "churn_logloss", "churn_lift_10", "churn_ece"]
VALUE = ["clv_spearman", "clv_gini", "clv_top10_capture", "clv_top20_capture"]
AGGREGATES = ["clv_predicted_purchases", "clv_actual_purchases", "clv_predicted_spend", "clv_actual_spend"]
BASELINES = ["recency", "palive", "rfm"]


@pytest.fixture(scope="module")
def result(cdnow_transactions, tracking_uri, settings) -> TrainResult:
    return train(cdnow_transactions, settings=settings, tracking_uri=tracking_uri, experiment="cdnow")


@pytest.fixture(scope="module")
def run(result):
    return mlflow.MlflowClient(result.tracking_uri).get_run(result.run_id)


def test_the_out_of_time_design_on_cdnow(result):
    plan = result.plan
    assert plan.data_end == pd.Timestamp("1998-06-30")
    assert plan.holdout_as_of == pd.Timestamp("1998-04-01")
    assert plan.evaluation_snapshots[0] == pd.Timestamp("1998-01-01")
    assert result.metrics["holdout_customers"] == 23502


def test_params_and_metric_names_are_on_the_run(run):
    assert set(PARAMS) <= set(run.data.params), sorted(set(PARAMS) - set(run.data.params))
    expected = CHURN + VALUE + AGGREGATES
    expected += [f"baseline_{b}_{m}" for b in BASELINES for m in CHURN + VALUE]
    expected += [f"btyd_{m}_{k}" for m in ("bgnbd", "mbgnbd", "pareto") for k in ("purchase_mae", "churn_auc")]
    expected += ["regressor_clv_spearman", "baseline_spend_clv_spearman"]
    assert set(expected) <= set(run.data.metrics), sorted(set(expected) - set(run.data.metrics))
    assert float(run.data.params["bgnbd_r"]) > 0 and float(run.data.params["gg_q"]) > 1
    # the production purchase fit: CDNOW's customers at 1998-06-30 as their distinct (frequency, recency, T) rows
    assert (run.data.params["btyd_fit_customers"], run.data.params["btyd_fit_distinct_rows"]) == ("23502", "11102")
    assert run.data.tags["promotion"] == "promoted"


def test_plots_and_fingerprint_are_logged(result):
    client = mlflow.MlflowClient(result.tracking_uri)
    plots = {Path(a.path).name for a in client.list_artifacts(result.run_id, "plots")}
    assert {
        "holdout_purchases_by_frequency.png",
        "value_deciles.png",
        "churn_roc.png",
        "churn_pr.png",
        "churn_reliability.png",
        "churn_feature_importance.png",
    } <= plots
    fingerprint = mlflow.artifacts.load_dict(f"runs:/{result.run_id}/data_fingerprint.json")
    assert fingerprint["rows"] == 69324 and len(fingerprint["sha256"]) == 64


def test_the_churn_model_beats_every_baseline_on_cdnow(result, run):
    logged = run.data.metrics
    for baseline in BASELINES:
        assert logged["churn_auc"] > logged[f"baseline_{baseline}_churn_auc"], baseline
    m = result.metrics
    # BG/NBD's 1 - P(alive) ranks churners worse than chance here (P(alive) = 1 for one-time buyers)
    assert m["btyd_bgnbd_churn_auc"] < 0.5
    # the menu's choice is within the near-tie tolerance of the lowest inner-holdout purchase MAE
    chosen = result.btyd_model
    best = min(m[f"btyd_{n}_purchase_mae"] for n in ("bgnbd", "mbgnbd", "pareto"))
    assert m[f"btyd_{chosen}_purchase_mae"] <= best * (1 + MAE_TIE_TOLERANCE)
    assert np.isclose(m["clv_actual_purchases"], 5618)


def test_the_first_model_is_promoted_and_loads_from_the_registry(result, cdnow_transactions):
    assert result.decision.promoted and not result.decision.forced
    scorer = load_scorer("models:/patron@champion")
    assert scorer.metadata["model_version"] == result.model_version == "1"
    # the pyfunc takes transaction rows (the API's and the batch's contract): 200 customers' rows
    first = cdnow_transactions["customer_id"].drop_duplicates().head(200)
    rows = cdnow_transactions[cdnow_transactions["customer_id"].isin(first)]
    model = mlflow.pyfunc.load_model("models:/patron@champion")
    scores = model.predict(rows, params={"as_of": "1998-06-30"})
    assert list(scores.columns) == list(SCORE_COLUMNS) and len(scores) == 200
    assert scores["churn_probability"].between(0, 1).all()


def test_the_registered_model_is_small_and_pickle_free(result, tmp_path):
    local = Path(mlflow.artifacts.download_artifacts(f"models:/patron/{result.model_version}", dst_path=str(tmp_path)))
    files = [p for p in local.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in {".pkl", ".pickle"}]
    assert sum(p.stat().st_size for p in files) < 5_000_000


# Golden figures of CDNOW's reported holdout, measured with seed 42 on one LightGBM thread
# (`benchmarks/bench_quality.py --data cdnow --seeds 42,1,2,3`, benchmarks/RESULTS.md). Spread over
# seeds 1, 2, 3 and 42: the menu chose `logistic` on all four (inner AUC 0.8074 against 0.8052-0.8064
# for the best LightGBM level and the blend), whose fit has no seed, so churn AUC 0.8396 on all four
# (tolerance 0.003: solver and BLAS noise; a flip back to LightGBM, 0.838, fails); value Spearman
# 0.4134 / 0.4140 / 0.4153 / 0.4207 (the regressor's seed; tolerance 0.01 > the 0.0073 spread); interval
# coverage identical on all four (BTYD fits only; 0.005 for solver noise).
GOLDEN_CHURN_MODEL = "logistic"
GOLDEN = {
    "churn_auc": (0.8396, 0.003),
    "value_spearman": (0.4134, 0.01),
    "interval_coverage_purchases_90": (0.9219, 0.005),
    "interval_coverage_spend_90": (0.9222, 0.005),
    "interval_coverage_purchases_80": (0.9219, 0.005),
    "interval_coverage_spend_80": (0.9018, 0.005),
    # the randomized PIT at the nominal levels: the plain 80% over-covers through the atom at 0 alone
    "interval_pit_coverage_purchases_90": (0.8964, 0.005),
    "interval_pit_coverage_spend_90": (0.8980, 0.005),
    "interval_pit_coverage_purchases_80": (0.7971, 0.005),
    "interval_pit_coverage_spend_80": (0.7993, 0.005),
}


def test_the_holdout_figures_hold_their_golden_values(run):
    logged = run.data.metrics
    for name, (value, tolerance) in GOLDEN.items():
        assert logged[name] == pytest.approx(value, abs=tolerance), name
    assert {"inner_clv_spearman", "inner_regressor_clv_spearman"} <= set(logged)
    assert {f"inner_churn_{name}_auc" for name in CHURN_CHOICES} | {"inner_spend_rate_clv_spearman"} <= set(logged)
    assert run.data.params["churn_model"] == GOLDEN_CHURN_MODEL
    assert run.data.params["choice_churn_model"].startswith("best inner-holdout AUC")
