"""`patron train`: load a transaction log, write its rejects, then train, evaluate, register and gate."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
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
    from jobs.spark.sample import CustomerSample, TrainingSource


@dataclass(frozen=True)
class TrainingJobResult:
    """What `run_training` read, rejected and trained."""

    loaded: LoadResult
    rejects_path: Path | None  # None when no row was rejected
    trained: TrainResult
    sample: CustomerSample | None = None  # with engine "spark": the customers sampled from the source

    def btyd_lines(self) -> list[str]:
        """With Spark, which customers the BTYD purchase model was fitted on (the command prints it)."""
        if self.sample is None:
            return []
        params = self.trained.params
        return [
            f"BTYD {params['btyd_model']} fitted on every customer of the source: {params['btyd_fit_customers']:,} "
            f"customers as {params['btyd_fit_distinct_rows']:,} distinct (frequency, recency, T) rows counted by Spark; "
            f"Gamma-Gamma, churn and value models on the {self.sample.sampled_customers:,} sampled"
        ]


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
    at most `settings.spark_train_customers` customers, sampled by hash, are trained on, except by the
    BTYD purchase models: those are fitted on every customer's (frequency, recency, T) row as Spark
    counts them (`jobs.spark.btyd`). The run logs the sample (`jobs.spark.sample`).
    `on_loaded(loaded, rejects_path)` is called before training starts (the CLI prints the load
    summary), `on_sampled(sample)` before it with Spark, `on_learned(learned)` after the uplift is learned.
    """
    with ExitStack() as stack:
        sample = purchase_counts = None
        if engine == "spark":
            if campaigns:
                raise DataError("--campaigns needs every treated customer's rows: use --engine local to learn uplift")
            source = stack.enter_context(open_spark_source(transactions, options, settings, spark_master=spark_master))
            sample = sample_with_spark(source, settings, rejects_out=rejects_out)
            if on_sampled is not None:
                on_sampled(sample)
            loaded, rejects_path = sample.loaded, None  # the sample's own rejects are among the source's, written above
            as_of = as_of or sample.last_day.date().isoformat()  # E is the source's last day, not the sample's
            from jobs.spark.btyd import purchase_counts_with_spark

            purchase_counts = functools.partial(purchase_counts_with_spark, source)
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
            purchase_counts=purchase_counts,
        )
    if sample is not None:
        from jobs.spark.sample import log_sample

        log_sample(trained.run_id, trained.tracking_uri, sample)
    return TrainingJobResult(loaded, rejects_path, trained, sample)


def open_spark_source(
    transactions: str, options: LoadOptions, settings: Settings, *, spark_master: str | None
) -> AbstractContextManager[TrainingSource]:
    """The source read by Spark (on `spark_master`, else the settings' master) with the settings' partitioning."""
    from jobs.spark.sample import open_training_source
    from jobs.spark.session import spark_session

    spark = spark_session(spark_master or settings.spark_master)
    return open_training_source(spark, transactions, options, partition_rows=settings.spark_partition_rows)


def sample_with_spark(source: TrainingSource, settings: Settings, *, rejects_out: str) -> CustomerSample:
    """The training sample of a Spark source, with the settings' size and seed."""
    from jobs.spark.sample import sample_customers

    return sample_customers(
        source, max_customers=settings.spark_train_customers, seed=settings.seed, rejects_out=rejects_out
    )
