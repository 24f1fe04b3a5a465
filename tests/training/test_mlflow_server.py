"""The whole pipeline against a real `mlflow server` subprocess (sqlite backend, proxied artifacts)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from subprocesses import wait_until_up

from core.scores import SCORE_COLUMNS
from models.pyfunc import load_scorer
from training.train import train

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """`mlflow server` on a free local port; stopped (with its whole process group) afterwards."""
    folder = tmp_path_factory.mktemp("mlflow_server")
    artifacts = folder / "artifacts"
    port = _free_port()
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--backend-store-uri", f"sqlite:///{folder}/mlflow.db", "--artifacts-destination", str(artifacts)]
    command += ["--workers", "1"]
    # The job runner (huey consumers) is not needed for tracking and would add seven processes.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = open(folder / "server.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/health", process, folder / "server.log", "mlflow server")
        previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MLFLOW_TRACKING_URI", url)
            yield url, artifacts
            mlflow.set_tracking_uri(previous[0])
            mlflow.set_registry_uri(previous[1])
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def result(server, small_log, settings):
    url, _ = server
    return train(small_log, settings=settings, tracking_uri=url, experiment="server-test")


def test_the_run_and_its_artifacts_live_on_the_server(server, result):
    url, artifacts = server
    assert result.tracking_uri == url
    run = mlflow.MlflowClient(url).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert "churn_auc" in run.data.metrics and "bgnbd_r" in run.data.params
    stored = {p.name for p in artifacts.rglob("*") if p.is_file()}
    assert {"churn_roc.png", "scorer.json", "MLmodel", "data_fingerprint.json"} <= stored


def test_the_registered_champion_loads_from_the_server_and_scores(server, result, small_log):
    url, _ = server
    assert result.decision.promoted
    scorer = load_scorer("models:/patron@champion")
    assert scorer.metadata["model_version"] == result.model_version
    first = small_log["customer_id"].drop_duplicates().head(50)
    rows = small_log[small_log["customer_id"].isin(first)]
    scores = mlflow.pyfunc.load_model("models:/patron@champion").predict(rows, params={"as_of": "2023-12-31"})
    assert list(scores.columns) == list(SCORE_COLUMNS) and len(scores) == 50
