"""Shared set-up of the serving benchmarks: generated data and a model trained into a temporary registry."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class BenchModel:
    """A trained champion in a temporary MLflow store."""

    tracking_uri: str
    model_uri: str
    transactions: pd.DataFrame
    as_of: pd.Timestamp


def generate(n_customers: int, seed: int, path: Path) -> pd.DataFrame:
    """Generate a transaction log with `features.synthetic` and write it as Parquet (reused if present)."""
    from features.synthetic import generate_transactions

    if path.exists():
        return pd.read_parquet(path)
    start = time.perf_counter()
    data = generate_transactions(n_customers, seed=seed)
    data.transactions.to_parquet(path, index=False)
    print(f"generated {len(data.transactions):,} transactions of {n_customers:,} customers "
          f"in {time.perf_counter() - start:.1f} s -> {path}", flush=True)
    return data.transactions


def train_model(folder: Path, n_customers: int, seed: int) -> BenchModel:
    """Train and promote `patron@champion` on generated data into `folder/mlflow.db`."""
    from features import load_transactions
    from patron.settings import Settings
    from training.train import train

    path = folder / f"train_{n_customers}.parquet"
    database = folder / "mlflow.db"
    reuse = database.exists() and path.exists()  # a --workdir of an earlier run already holds the model
    generate(n_customers, seed, path)
    transactions = load_transactions(path).transactions
    tracking_uri = f"sqlite:///{database}"
    if not reuse:
        start = time.perf_counter()
        result = train(transactions, settings=Settings(tracking_uri=tracking_uri), experiment="bench", force_promote=True)
        scorer = result.scorer
        value_trees = scorer.value_model.booster_.num_trees() if scorer.value_model is not None else 0
        churn = getattr(scorer.churn_model, "booster", scorer.churn_model)  # a blend's LightGBM part
        kind = (f"{churn.booster_.num_trees()} trees of <= {churn.num_leaves} leaves" if hasattr(churn, "booster_")
                else f"logistic on {len(churn.feature_names_)} features")
        print(f"trained on {n_customers:,} customers in {time.perf_counter() - start:.1f} s "
              f"(churn model {result.choice.churn_level}: {kind}, value model {value_trees} trees)", flush=True)
    as_of = pd.Timestamp(transactions["timestamp"].max()).normalize()
    return BenchModel(tracking_uri, "models:/patron@champion", transactions, as_of)
