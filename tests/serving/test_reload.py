"""Model reloads against a real registry: polling picks up a new champion; failures keep serving."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from serving_helpers import request_body

POLL_NAME = "patron-poll"


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def poll_registry(registry):
    """A second registered model holding the champion's artifacts, so tests can move its alias freely.

    MLflow resolves a `models:/m-...` source through its process-wide tracking URI, whatever the client's
    own, so that URI points at this store while the fixture lives (other tests in the process use others).
    """
    import mlflow
    from mlflow import MlflowClient

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(registry.tracking_uri)
    client = MlflowClient(tracking_uri=registry.tracking_uri, registry_uri=registry.tracking_uri)
    champion = client.get_model_version_by_alias("patron", "champion")
    client.create_registered_model(POLL_NAME)

    def new_version() -> str:
        version = client.create_model_version(POLL_NAME, source=champion.source, run_id=champion.run_id)
        return str(version.version)

    client.set_registered_model_alias(POLL_NAME, "champion", new_version())
    yield client, new_version
    client.delete_registered_model(POLL_NAME)
    mlflow.set_tracking_uri(previous)


def test_failing_uri_keeps_the_previous_model_serving(make_client, settings, registry, poll_registry):
    client_ml, new_version = poll_registry
    app_settings = settings.model_copy(update={"model_uri": f"models:/{POLL_NAME}@champion"})
    client = make_client(app_settings, loader=None, use_registry=True)
    body = request_body(registry.transactions, [str(registry.transactions["customer_id"].iloc[0])], registry.as_of)
    assert client.get("/v1/model").json()["version"] == "1"

    client_ml.delete_registered_model_alias(POLL_NAME, "champion")  # the URI no longer resolves
    failed = client.post("/admin/reload", params={"force": True})
    assert failed.status_code == 503 and failed.json()["status"] == "failed"
    assert failed.json()["model_version"] == "1"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and "champion" in ready.json()["last_error"]
    scored = client.post("/v1/score", json=body)
    assert scored.status_code == 200 and scored.json()["model"]["version"] == "1"
    assert 'patron_model_reloads_total{outcome="failed"} 1.0' in client.get("/metrics").text


def test_polling_swaps_in_a_new_champion(make_client, settings, poll_registry):
    client_ml, new_version = poll_registry
    app_settings = settings.model_copy(
        update={"model_uri": f"models:/{POLL_NAME}@champion", "reload_interval_seconds": 0.2}
    )
    client = make_client(app_settings, loader=None, use_registry=True)
    assert client.get("/v1/model").json()["version"] == "1"
    client_ml.set_registered_model_alias(POLL_NAME, "champion", new_version())
    assert wait_for(lambda: client.get("/v1/model").json()["version"] == "2")
    assert client.get("/readyz").json()["model_version"] == "2"
    assert 'patron_model_info{model_name="patron-poll",model_version="2"} 1.0' in client.get("/metrics").text


@pytest.fixture
def break_champion(registry, poll_registry, tmp_path) -> Callable[[], str]:
    """Registers a copy of the champion whose scorer.json lists one churn feature too few (issue 15.1)
    under `patron-poll` and moves that model's `champion` alias to it; returns the version."""

    def register() -> str:
        import json

        import mlflow

        client_ml, _ = poll_registry
        champion = client_ml.get_model_version_by_alias("patron", "champion")
        copy = Path(
            mlflow.artifacts.download_artifacts(champion.source, dst_path=str(tmp_path), tracking_uri=registry.tracking_uri)
        )
        config_file = copy / "artifacts" / "scorer" / "scorer.json"
        config = json.loads(config_file.read_text())
        config["churn_features"] = config["churn_features"][:-1]
        config_file.write_text(json.dumps(config))
        broken = client_ml.create_model_version(POLL_NAME, source=str(copy), run_id=champion.run_id)
        client_ml.set_registered_model_alias(POLL_NAME, "champion", str(broken.version))
        return str(broken.version)

    return register


def test_a_model_that_cannot_score_never_goes_live(make_client, settings, registry, break_champion):
    """Issue 15.1: a champion whose scorer.json lists one churn feature too few is refused at reload."""
    app_settings = settings.model_copy(update={"model_uri": f"models:/{POLL_NAME}@champion"})
    client = make_client(app_settings, loader=None, use_registry=True)
    body = request_body(registry.transactions, [str(registry.transactions["customer_id"].iloc[0])], registry.as_of)
    assert client.get("/v1/model").json()["version"] == "1"

    break_champion()
    reloaded = client.post("/admin/reload", params={"force": True})
    assert reloaded.status_code == 503 and reloaded.json()["status"] == "failed"
    assert "cannot score" in reloaded.json()["error"]
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["model_version"] == "1"
    scored = client.post("/v1/score", json=body)
    assert scored.status_code == 200 and scored.json()["model"]["version"] == "1"


def test_a_model_that_cannot_score_is_refused_at_startup(make_client, settings, registry, break_champion):
    """Issue 15.1 at startup: the app starts without a model, /readyz 503 says why, /v1/score answers 503."""
    break_champion()
    app_settings = settings.model_copy(update={"model_uri": f"models:/{POLL_NAME}@champion"})
    client = make_client(app_settings, loader=None, use_registry=True)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
    assert "cannot score" in ready.json()["last_error"]
    body = request_body(registry.transactions, [str(registry.transactions["customer_id"].iloc[0])], registry.as_of)
    assert client.post("/v1/score", json=body).status_code == 503


def test_patron_score_refuses_a_model_that_cannot_score(registry, break_champion, tmp_path, monkeypatch):
    """Issue 15.1 in `patron score`: one error line, exit 1, and neither scores nor rejects written."""
    from typer.testing import CliRunner

    from patron.cli import app as cli
    from patron.settings import get_settings

    break_champion()
    monkeypatch.setenv("PATRON_TRACKING_URI", registry.tracking_uri)
    get_settings.cache_clear()
    out = tmp_path / "out" / "scores.parquet"
    out.parent.mkdir()
    args = ["score", "--transactions", str(registry.transactions_path), "--as-of", str(registry.as_of.date())]
    args += ["--out", str(out), "--model-uri", f"models:/{POLL_NAME}@champion"]
    try:
        result = CliRunner().invoke(cli, args)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot score" in errors[0] and "Traceback" not in result.output, result.output
    assert list(out.parent.iterdir()) == []
