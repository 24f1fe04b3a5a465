"""`patron train`: load a transaction log, write its rejects, then train, evaluate, register and gate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import DataError
from features.io import write_table
from features.validate import LoadResult
from jobs.campaigns import LearnedUplift, learn_from_campaigns
from jobs.load import LoadOptions, load_log
from patron.settings import Settings
from training.train import TrainResult, train

if TYPE_CHECKING:
    from jobs.spark.sample import CustomerSample


@dataclass(frozen=True)
class TrainingJobResult:
    """What `run_training` read, rejected and trained."""

    loaded: LoadResult
    rejects_path: Path | None  # None when no row was rejected
    trained: TrainResult
    sample: CustomerSample | None = None  # with engine "spark": the customers sampled from the source


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
    engine: str = "local",
    spark_master: str | None = None,
    on_loaded: Callable[[LoadResult, Path | None], None] | None = None,
    on_sampled: Callable[[CustomerSample], object] | None = None,
    on_learned: Callable[[LearnedUplift], object] | None = None,
) -> TrainingJobResult:
    """Load and validate a log, write the rejected rows, learn uplift from `campaigns` (assignment files
    or `ledger`), and train a model on the rest.

    With `engine="spark"` the log is read by Spark (on `spark_master`, else the settings' master) and
    at most `settings.spark_train_customers` customers, sampled by hash, are trained on; the run logs
    the sample (`jobs.spark.sample`). `on_loaded(loaded, rejects_path)` is called before training
    starts (the CLI prints the load summary), `on_sampled(sample)` before it with Spark,
    `on_learned(learned)` after the uplift is learned.
    """
    sample = None
    if engine == "spark":
        if campaigns:
            raise DataError("--campaigns needs every treated customer's rows: use --engine local to learn uplift")
        sample = sample_with_spark(transactions, options, settings, spark_master=spark_master, rejects_out=rejects_out)
        if on_sampled is not None:
            on_sampled(sample)
        loaded, rejects_path = sample.loaded, None  # the sample's own rejects are among the source's, written above
    else:
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
    if sample is not None:
        from jobs.spark.sample import log_sample

        log_sample(trained.run_id, trained.tracking_uri, sample)
    return TrainingJobResult(loaded, rejects_path, trained, sample)


def sample_with_spark(
    transactions: str, options: LoadOptions, settings: Settings, *, spark_master: str | None, rejects_out: str
) -> CustomerSample:
    """The training sample of a Spark source, with the settings' size, seed and partitioning."""
    from jobs.spark.sample import sample_customers
    from jobs.spark.session import spark_session

    return sample_customers(
        spark_session(spark_master or settings.spark_master),
        transactions,
        options,
        max_customers=settings.spark_train_customers,
        seed=settings.seed,
        partition_rows=settings.spark_partition_rows,
        rejects_out=rejects_out,
    )
