"""Tracking set-up: sqlite URIs resolve against the working directory, artifacts land next to the db."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from training.tracking import (
    configure_tracking,
    default_artifact_location,
    ensure_experiment,
    sqlite_database_path,
)


def test_sqlite_paths_relative_and_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sqlite_database_path("sqlite:///mlruns/mlflow.db") == tmp_path / "mlruns" / "mlflow.db"
    assert sqlite_database_path(f"sqlite:///{tmp_path}/x.db") == tmp_path / "x.db"
    assert sqlite_database_path("http://127.0.0.1:5000") is None
    assert default_artifact_location("http://127.0.0.1:5000", "patron") is None


def test_default_store_is_created_under_mlruns_with_its_artifacts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///unused.db")  # restored after the test
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        uri = configure_tracking("sqlite:///mlruns/mlflow.db")
        assert uri == f"sqlite:///{tmp_path}/mlruns/mlflow.db"
        experiment_id = ensure_experiment("churn check", uri)
        assert ensure_experiment("churn check", uri) == experiment_id
        location = mlflow.MlflowClient(uri).get_experiment(experiment_id).artifact_location
        assert Path(location.removeprefix("file://")) == tmp_path / "mlruns" / "artifacts" / "churn_check"
        assert (tmp_path / "mlruns" / "mlflow.db").is_file()
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


@pytest.mark.parametrize("uri", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_has_no_folder(uri):
    assert sqlite_database_path(uri) is None
