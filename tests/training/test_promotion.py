"""The promotion gate with a real registry: first run promoted, identical rerun kept out, force overrides."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from patron.cli import app
from training.registry import CHAMPION_ALIAS, Holdout, champion_version, promote_if_better
from training.train import TrainResult, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def first(small_log, tracking_uri, settings) -> TrainResult:
    return train(small_log, settings=settings, tracking_uri=tracking_uri)


@pytest.fixture(scope="module")
def log_file(small_log, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("data") / "transactions.parquet"
    small_log.to_parquet(path)
    return str(path)


@pytest.fixture(scope="module")
def second(first, log_file, tracking_uri, monkeypatch_module):
    """The identical run again, through the command line."""
    monkeypatch_module.setenv("PATRON_N_THREADS", "1")
    from patron.settings import get_settings

    get_settings.cache_clear()
    outcome = CliRunner().invoke(app, ["train", "--transactions", log_file])
    get_settings.cache_clear()
    return outcome


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_the_first_run_is_promoted(first):
    assert first.decision.promoted and not first.decision.forced
    assert "no champion yet" in first.decision.reason
    assert champion_version("patron") == first.model_version == "1"
    run = mlflow.MlflowClient().get_run(first.run_id)
    assert run.data.tags["promotion"] == "promoted"


def test_an_identical_second_run_is_not_promoted(first, second):
    assert second.exit_code == 0, second.output
    assert "churn_auc" in second.output and "RFM score" in second.output  # metrics beside baselines
    # the menu's inner-holdout figures, the choice (starred) and its reason are printed
    assert all(name in second.output for name in ("lightgbm_strong", "logistic", "blend", "spend rate", "inner Spearman"))
    assert "churn_model: best inner-holdout AUC" in second.output and " *" in second.output
    assert "registered patron version 2" in second.output
    assert "promotion: REJECTED - no improvement (a tie keeps the champion)" in second.output
    assert champion_version("patron") == "1"
    version = mlflow.MlflowClient().get_model_version("patron", "2")
    assert version.tags["patron.promotion"] == "rejected"
    assert str(mlflow.MlflowClient().get_model_version_by_alias("patron", "candidate").version) == "2"


def test_force_promote_overrides_the_gate_and_says_so(first, second, small_log, tracking_uri):
    holdout_as_of = first.plan.holdout_as_of
    from features import build_features

    holdout = Holdout(
        features=build_features(small_log, holdout_as_of, horizon_days=90),
        as_of=holdout_as_of,
        time_unit_days=1,
        horizon_days=90,
    )
    baselines = {b: first.metrics[f"baseline_{b}_churn_auc"] for b in ("recency", "palive", "rfm")}
    decision = promote_if_better(
        "patron", "2", first.metrics["churn_auc"], baselines, holdout, first.plan.data_end, force=True
    )
    assert decision.promoted and decision.forced and decision.label == "forced"
    assert "forced by --force-promote" in decision.reason and "tie" in decision.reason
    assert str(mlflow.MlflowClient().get_model_version_by_alias("patron", CHAMPION_ALIAS).version) == "2"
    assert mlflow.MlflowClient().get_model_version("patron", "2").tags["patron.promotion"] == "forced"


def test_the_cli_passes_its_options_to_train(monkeypatch, log_file):
    import jobs.train

    received = {}

    class Stop(Exception):
        pass

    def fake_train(transactions, **kwargs):
        received.update(kwargs, rows=len(transactions))
        raise Stop

    monkeypatch.setattr(jobs.train, "train", fake_train)  # the training call `patron train` makes
    args = ["train", "--transactions", log_file, "--as-of", "2023-11-30", "--churn-horizon-days", "60"]
    args += ["--experiment", "trial", "--force-promote"]
    outcome = CliRunner().invoke(app, args)
    assert isinstance(outcome.exception, Stop)
    assert received["as_of"] == "2023-11-30" and received["churn_horizon_days"] == 60
    assert received["experiment"] == "trial" and received["force_promote"] is True
    assert received["rows"] == len(pd.read_parquet(log_file))


def test_too_little_history_is_one_error_line(tmp_path, small_log):
    short = small_log[small_log["timestamp"] < "2022-08-01"]
    path = tmp_path / "short.parquet"
    short.to_parquet(path)
    outcome = CliRunner().invoke(app, ["train", "--transactions", str(path)])
    assert outcome.exit_code == 1
    assert "error: the out-of-time design needs at least 270 days of history" in outcome.output
