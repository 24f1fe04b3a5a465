"""Fixtures of the training tests: a private MLflow store per module, and small and real data sets."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from realdata import CDNOW_MAP

from features import load_transactions
from features.synthetic import generate_transactions
from patron.settings import Settings


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An empty, fully migrated MLflow sqlite database (creating one takes seconds; copying it does not)."""
    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory, empty_store) -> Iterator[str]:
    """A fresh sqlite store; MLflow's global URIs and MLFLOW_TRACKING_URI are restored afterwards."""
    folder = tmp_path_factory.mktemp("mlruns")
    shutil.copyfile(empty_store, folder / "mlflow.db")
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with pytest.MonkeyPatch.context() as mp:
        uri = f"sqlite:///{folder}/mlflow.db"
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


@pytest.fixture(scope="module")
def settings() -> Settings:
    """Default settings on one LightGBM thread (the test machine's cores are shared)."""
    return Settings(n_threads=1)


@pytest.fixture(scope="session")
def small_log() -> pd.DataFrame:
    """1,500 generated customers over two years: the smallest log the full design trains on quickly."""
    return generate_transactions(1500, seed=1).transactions


@pytest.fixture(scope="session")
def cdnow_transactions(cdnow_master_path) -> pd.DataFrame:
    """The real CDNOW master file through the transaction contract."""
    return load_transactions(cdnow_master_path, mapping=CDNOW_MAP, date_format="%Y%m%d").transactions
