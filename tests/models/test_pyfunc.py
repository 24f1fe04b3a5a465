"""The MLflow pyfunc: logged from code, loaded without pickle, predicting the scores table; also served."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from subprocesses import wait_until_up

from core.errors import ModelError
from core.scores import SCORE_COLUMNS
from features import build_features
from features.synthetic import generate_transactions
from models.prediction import check_scorer, score_transactions
from models.pyfunc import load_scorer, log_scorer, parse_model_uri
from models.scorer import PatronScorer
from training.fit import TrainingConfig, fit_scorer
from training.tracking import configure_tracking, ensure_experiment

AS_OF = "2023-12-31"
NAME = "patron_test"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A fresh sqlite tracking store; MLflow's global URIs and the environment are restored after."""
    folder = tmp_path_factory.mktemp("mlruns")
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", "unused")
        uri = configure_tracking(f"sqlite:///{folder}/mlflow.db")
        yield uri, ensure_experiment("pyfunc-tests", uri)
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


@pytest.fixture(scope="module")
def logged(store, tmp_path_factory):
    """A scorer fitted on generated data, logged and registered as version 1 with alias champion."""
    uri, experiment_id = store
    transactions = generate_transactions(1500, seed=21).transactions
    scorer = fit_scorer(transactions, TrainingConfig(seed=3, n_threads=1), metadata={"model_name": NAME})
    folder = scorer.save(tmp_path_factory.mktemp("scorer") / "scorer")
    with mlflow.start_run(experiment_id=experiment_id):
        info = log_scorer(scorer, folder, registered_model_name=NAME)
    mlflow.MlflowClient().set_registered_model_alias(NAME, "champion", info.registered_model_version)
    return scorer, transactions, info


def test_predict_takes_transaction_rows_and_returns_the_scores_table(logged):
    """The pyfunc's contract is the API's and the batch's: transaction rows in, scores out, one path."""
    scorer, transactions, _ = logged
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    out = model.predict(transactions)
    assert list(out.columns) == list(SCORE_COLUMNS)
    expected = score_transactions(transactions, scorer, AS_OF).scores  # as_of: the training data's end
    columns = [c for c in SCORE_COLUMNS if c not in ("as_of", "model_name", "model_version")]
    pd.testing.assert_frame_equal(out[columns], expected[columns], check_dtype=False)
    assert (out["as_of"] == pd.Timestamp(AS_OF)).all()


def test_as_of_comes_from_params_or_a_column(logged):
    _, transactions, info = logged
    model = mlflow.pyfunc.load_model(info.model_uri)
    frame = transactions.head(200)
    by_param = model.predict(frame, params={"as_of": "2023-12-01"})
    assert len(by_param) and (by_param["as_of"] == pd.Timestamp("2023-12-01")).all()
    by_column = model.predict(frame.assign(as_of="2023-11-30"))
    assert (by_column["as_of"] == pd.Timestamp("2023-11-30")).all()
    with pytest.raises(Exception, match="more than one day"):
        model.predict(frame.assign(as_of=["2023-12-15", "2023-11-30"] * 100))


def test_missing_columns_are_refused(logged):
    _, transactions, info = logged
    model = mlflow.pyfunc.load_model(info.model_uri)
    with pytest.raises(Exception, match="amount"):
        model.predict(transactions.drop(columns=["amount", "quantity"]))


def test_a_model_that_cannot_score_is_never_logged(logged, store, tmp_path):
    """check_scorer runs before logging: a scorer listing one churn feature too few is refused."""
    scorer, _, _ = logged
    broken = PatronScorer.load(scorer.save(tmp_path / "ok"))
    broken.churn_features = broken.churn_features[:-1]
    with pytest.raises(ModelError, match="cannot score"):
        check_scorer(broken)
    with mlflow.start_run(experiment_id=store[1]), pytest.raises(ModelError, match="cannot score"):
        log_scorer(broken, broken.save(tmp_path / "broken"), registered_model_name=NAME)
    assert check_scorer(scorer)["customer_id"].tolist() == ["example_1", "example_2", "example_3"]


def test_artifact_is_small_code_and_json_with_no_pickle(logged, tmp_path):
    _, _, info = logged
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path)))
    files = [p for p in local.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in {".pkl", ".pickle", ".cloudpickle"}]
    assert sum(p.stat().st_size for p in files) < 5_000_000
    mlmodel = (local / "MLmodel").read_text()
    assert "model_code_path" in mlmodel and "python_model.pkl" not in mlmodel
    assert (local / "artifacts" / "scorer" / "scorer.json").is_file()


def test_load_scorer_attaches_registry_name_version_and_alias(logged):
    _, transactions, info = logged
    features = build_features(transactions, AS_OF)
    scorer = load_scorer(f"models:/{NAME}@champion")
    assert scorer.metadata["model_name"] == NAME
    assert scorer.metadata["model_version"] == str(info.registered_model_version)
    assert scorer.metadata["alias"] == "champion"
    scores = scorer.score(features.head(5), AS_OF)
    assert (scores["model_version"] == str(info.registered_model_version)).all()


def test_parse_model_uri():
    assert parse_model_uri("models:/patron@champion") == ("patron", None, "champion")
    assert parse_model_uri("models:/patron/3") == ("patron", "3", None)
    assert parse_model_uri("runs:/abc/model") == (None, None, None)


def test_a_non_patron_model_is_refused(store, tmp_path):
    _, experiment_id = store
    code = tmp_path / "echo.py"
    code.write_text(
        "import mlflow\n\n\nclass Echo(mlflow.pyfunc.PythonModel):\n"
        "    def predict(self, context, model_input, params=None):\n        return model_input\n\n\n"
        "mlflow.models.set_model(Echo())\n"
    )
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.pyfunc.log_model(name="echo", python_model=str(code), pip_requirements=["mlflow"])
    with pytest.raises(ModelError, match="not a Patron model"):
        load_scorer(info.model_uri)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.integration
def test_mlflow_models_serve_with_the_local_environment(logged, store, tmp_path):
    _, transactions, _ = logged
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store[0], "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    command = [str(Path(bin_dir) / "mlflow"), "models", "serve", "-m", f"models:/{NAME}@champion"]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", process, tmp_path / "serve.log", "mlflow models serve")
        rows = transactions[transactions["customer_id"].isin(transactions["customer_id"].unique()[:3])]
        body = rows.to_json(orient="split", index=False, date_format="iso")
        payload = '{"dataframe_split": ' + body + ', "params": {"as_of": "2023-12-31"}}'
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=payload.encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            predictions = pd.DataFrame(json.loads(response.read())["predictions"])
        assert list(predictions.columns) == list(SCORE_COLUMNS)
        assert predictions["customer_id"].tolist() == sorted(rows["customer_id"].unique())
        assert predictions["churn_probability"].between(0, 1).all()
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
        log.close()
