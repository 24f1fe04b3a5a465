"""`patron train`: load a transaction log, write its rejects, then train, evaluate, register and gate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from features.io import write_table
from features.validate import LoadResult
from jobs.campaigns import LearnedUplift, learn_from_campaigns
from jobs.load import LoadOptions, load_log
from patron.settings import Settings
from training.train import TrainResult, train


@dataclass(frozen=True)
class TrainingJobResult:
    """What `run_training` read, rejected and trained."""

    loaded: LoadResult
    rejects_path: Path | None  # None when no row was rejected
    trained: TrainResult


def run_training(
    transactions: str,
    options: LoadOptions,
    settings: Settings,
    *,
    rejects_out: str,
    campaigns: Sequence[str] = (),
    as_of: str | None = None,
    churn_horizon_days: int | None = None,
    experiment: str | None = None,
    force_promote: bool = False,
    on_loaded: Callable[[LoadResult, Path | None], None] | None = None,
    on_learned: Callable[[LearnedUplift], object] | None = None,
) -> TrainingJobResult:
    """Load and validate a log, write the rejected rows, learn uplift from `campaigns` (assignment files
    or `ledger`), and train a model on the rest.

    `on_loaded(loaded, rejects_path)` is called before training starts (the CLI prints the load summary),
    `on_learned(learned)` after the uplift is learned.
    """
    loaded = load_log(transactions, options)
    rejects_path = write_table(loaded.rejects, rejects_out) if len(loaded.rejects) else None
    if on_loaded is not None:
        on_loaded(loaded, rejects_path)
    policy = None
    choice = None
    if campaigns:
        learned = learn_from_campaigns(campaigns, loaded.transactions, settings)
        if on_learned is not None:
            on_learned(learned)
        policy = learned.policy
        choice = learned.choice
    trained = train(
        loaded.transactions,
        settings=settings,
        policy=policy,
        uplift_choice=choice,
        as_of=as_of,
        churn_horizon_days=churn_horizon_days,
        experiment=experiment,
        force_promote=force_promote,
    )
    return TrainingJobResult(loaded, rejects_path, trained)
