"""Spark fixtures: one real `local[2]` session and one model trained into a temporary MLflow registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spark_champion import Champion

from patron.settings import Settings

N_CUSTOMERS = 600
SEED = 20261129


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A real Spark session on two local cores (started once: it takes seconds)."""
    from jobs.spark.session import spark_session

    session = spark_session("local[2]", app_name="patron-tests", local_memory="1g")
    session.conf.set("spark.sql.shuffle.partitions", "4")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Champion:
    """Train on a generated log and promote the model to champion (once per session)."""
    from features.synthetic import generate_transactions
    from features.validate import validate_transactions
    from serving.batch import load_model
    from training.train import train

    folder: Path = tmp_path_factory.mktemp("spark-registry")
    # the contract's required columns only, so the model also scores logs without optional columns (CDNOW)
    generated = generate_transactions(N_CUSTOMERS, seed=SEED).transactions[["customer_id", "timestamp", "amount"]]
    transactions = validate_transactions(generated).transactions
    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    settings = Settings(tracking_uri=tracking_uri, n_threads=1, churn_snapshots=2)
    train(transactions, settings=settings, experiment="spark-tests", force_promote=True)
    model_uri = "models:/patron@champion"
    return Champion(tracking_uri, model_uri, load_model(model_uri, tracking_uri), transactions)


@pytest.fixture(scope="session")
def cdnow_csv(cdnow_master_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CDNOW as a comma-separated file of its raw text (Spark reads delimited text with a one-character separator)."""
    from features.io import read_table

    path = tmp_path_factory.mktemp("cdnow") / "cdnow.csv"
    read_table(cdnow_master_path).to_csv(path, index=False)
    return path
