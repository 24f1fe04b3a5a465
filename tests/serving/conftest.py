"""Serving fixtures: one real model trained on generated data into a temporary MLflow registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from patron.settings import Settings

N_CUSTOMERS = 1500
SEED = 20240611
MODEL_NAME = "patron"


@dataclass(frozen=True)
class Registry:
    """A temporary MLflow store holding `patron@champion`, and the data it was trained on."""

    tracking_uri: str
    model_uri: str
    transactions_path: Path
    transactions: pd.DataFrame
    as_of: pd.Timestamp
    run_id: str


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """Generate a transaction log, train on it and promote the model to champion (once per session)."""
    from features import load_transactions
    from features.synthetic import generate_transactions
    from training.train import train

    folder = tmp_path_factory.mktemp("registry")
    data = generate_transactions(N_CUSTOMERS, seed=SEED)
    path = folder / "transactions.parquet"
    data.transactions.to_parquet(path, index=False)
    transactions = load_transactions(path).transactions
    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    settings = Settings(tracking_uri=tracking_uri, registered_model_name=MODEL_NAME, n_threads=1)
    result = train(transactions, settings=settings, experiment="serving-tests", force_promote=True)
    as_of = pd.Timestamp(transactions["timestamp"].max()).normalize()
    return Registry(
        tracking_uri=tracking_uri,
        model_uri=f"models:/{MODEL_NAME}@champion",
        transactions_path=path,
        transactions=transactions,
        as_of=as_of,
        run_id=str(getattr(result, "run_id", "")),
    )


@pytest.fixture(scope="session")
def scorer(registry: Registry) -> Any:
    """The champion loaded from the registry the way the API loads it."""
    from serving.model_store import mlflow_scorer_loader

    return mlflow_scorer_loader(registry.tracking_uri)(registry.model_uri)


@pytest.fixture(scope="session")
def batch_scores(registry: Registry, scorer: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The batch job's scores file for the registry's data at its last day."""
    from serving.batch import score_file

    out = tmp_path_factory.mktemp("batch") / "scores.parquet"
    score_file(registry.transactions_path, out, scorer, registry.as_of, chunk_size=400, progress=False)
    return out


@pytest.fixture
def settings(registry: Registry, batch_scores: Path) -> Settings:
    """Serving settings pointing at the temporary registry and scores file."""
    return Settings(tracking_uri=registry.tracking_uri, model_uri=registry.model_uri, scores_path=str(batch_scores))


@pytest.fixture
def make_client(scorer: Any) -> Iterator[Callable[..., TestClient]]:
    """Start apps (lifespan included) with given settings and stop them after the test."""
    clients: list[TestClient] = []

    def make(
        settings: Settings, loader: Callable[[str], Any] | None = None, use_registry: bool = False
    ) -> TestClient:
        """`use_registry`: load from MLflow as production does (else `loader`, else the session scorer)."""
        from serving.app import create_app

        if not use_registry and loader is None:
            loader = lambda uri: scorer  # noqa: E731 - the already loaded champion, to keep tests fast
        app = create_app(settings=settings, scorer_loader=loader)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    """A running app with the champion loaded and no API keys."""
    return make_client(settings)
