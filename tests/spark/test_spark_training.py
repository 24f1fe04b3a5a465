"""`patron train --engine spark`: customers sampled by hash from a Spark source, trained as usual, the sample logged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from features.datasets import CDNOW_DATE_FORMAT, CDNOW_MAPPING
from jobs.load import LoadOptions, load_log
from patron.settings import Settings

pytestmark = [pytest.mark.spark, pytest.mark.realdata]

SAMPLED = 2_000


def test_train_on_a_hash_sample_of_cdnow_read_by_spark(spark: Any, cdnow_csv: Path, tmp_path: Path) -> None:
    from mlflow import MlflowClient
    from pyspark.sql import functions as F

    from jobs.train import run_training

    options = LoadOptions(mapping=dict(CDNOW_MAPPING), date_format=CDNOW_DATE_FORMAT)
    settings = Settings(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", n_threads=1, churn_snapshots=2,
                        spark_master="local[2]", spark_train_customers=SAMPLED)
    result = run_training(str(cdnow_csv), options, settings, rejects_out=str(tmp_path / "train.rejects.csv"),
                          experiment="spark-train", force_promote=True, engine="spark")
    assert result.sample is not None
    local = load_log(str(cdnow_csv), options)
    customers = local.transactions["customer_id"].unique()

    # the sample: the SAMPLED customers of smallest xxhash64(seed, id), each with all of its rows, as the local engine reads them
    hashes = spark.createDataFrame(pd.DataFrame({"customer_id": customers})).select(
        "customer_id", F.xxhash64(F.lit(settings.seed), "customer_id").alias("hash")).toPandas()
    expected_ids = hashes.sort_values(["hash", "customer_id"]).head(SAMPLED)["customer_id"]
    got = result.sample.loaded.transactions
    assert set(got["customer_id"]) == set(expected_ids)
    expected = local.transactions[local.transactions["customer_id"].isin(expected_ids)].reset_index(drop=True)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected)

    # the rejects of the whole source, as the local engine writes them
    spark_rejects = pd.read_csv(tmp_path / "train.rejects.csv", dtype=str, keep_default_na=False)
    assert len(spark_rejects) == len(local.rejects) > 0
    assert spark_rejects["row"].astype(int).tolist() == local.rejects["row"].tolist()

    # trained on the sample, but for the BTYD purchase models, and the run says so
    params = MlflowClient(tracking_uri=result.trained.tracking_uri).get_run(result.trained.run_id).data.params
    assert params["engine"] == "spark"
    assert int(params["spark_source_customers"]) == len(customers) > 20_000
    assert int(params["spark_sampled_customers"]) == int(params["data_customers"]) == SAMPLED
    assert result.trained.model_version == "1"

    # the BTYD purchase fits (production at E, out of time at E-H) equal local fits on the whole log
    whole_fits = assert_btyd_fitted_on_the_whole_log(result, local.transactions, settings)
    production = whole_fits[0]
    assert int(params["btyd_fit_customers"]) == production.n_customers_ == len(whole_fits[1]) > 20_000
    assert int(params["btyd_fit_distinct_rows"]) == production.n_purchase_rows_ < production.n_customers_
    assert f"{production.n_customers_:,} customers as {production.n_purchase_rows_:,} distinct" in result.btyd_lines()[0]


def assert_btyd_fitted_on_the_whole_log(result: Any, transactions: pd.DataFrame, settings: Settings) -> tuple[Any, pd.DataFrame]:
    """The run's production and out-of-time purchase parameters equal local fits on every customer (1e-6 relative);
    Gamma-Gamma is the sample's. Returns the local production fit and its features."""
    import mlflow

    from features import build_features
    from models.scorer import PatronScorer
    from training.fit import TrainingConfig, clv_model
    from training.registry import EVALUATION_SCORER_PATH

    plan = result.trained.plan
    assert plan.data_end == transactions["timestamp"].max().normalize()  # E is the source's last day
    config = TrainingConfig.from_settings(settings)
    folder = mlflow.artifacts.download_artifacts(run_id=result.trained.run_id, artifact_path=EVALUATION_SCORER_PATH,
                                                 tracking_uri=result.trained.tracking_uri)
    fitted = {plan.data_end: result.trained.scorer.clv_model, plan.holdout_as_of: PatronScorer.load(folder).clv_model}
    local = {}
    for as_of, got in fitted.items():
        features = build_features(transactions, as_of=as_of)
        expected = clv_model(config, got.model_).fit(features)
        local[as_of] = (expected, features)
        assert got.model_ == expected.model_ == result.trained.btyd_model and not got.fallbacks_
        assert got.n_customers_ == len(features)
        # the same objective on the same distinct rows: equal to the optimiser's tolerance (seen: bit-equal)
        for key in ("r", "alpha", "a", "b", "s", "beta"):
            if key in expected.params_ and pd.notna(expected.params_[key]):
                assert got.params_[key] == pytest.approx(expected.params_[key], rel=1e-6), (as_of, key)
        assert got.params_["p"] != pytest.approx(expected.params_["p"], rel=1e-6)  # Gamma-Gamma: on the sample
    return local[plan.data_end]


def test_train_on_spark_refuses_campaigns_in_one_line(tmp_path: Path) -> None:
    """Uplift needs every treated customer's rows, which a sample lacks: refused before Spark starts."""
    from typer.testing import CliRunner

    from patron.cli import app

    result = CliRunner().invoke(app, ["train", "--transactions", str(tmp_path / "log.csv"), "--engine", "spark",
                                      "--campaigns", "ledger", "--rejects", str(tmp_path / "r.csv")])
    assert result.exit_code == 1
    assert result.output.strip() == "error: --campaigns needs every treated customer's rows: use --engine local to learn uplift"
