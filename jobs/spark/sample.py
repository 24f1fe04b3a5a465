"""Customers sampled from a Spark source for `patron train --engine spark`.

The LightGBM fits need each customer's whole history, not the whole population: the sample is the
`max_customers` customers (among those with at least one accepted row) of smallest
`xxhash64(seed, customer_id)` (ties by id), so the same log and seed give the same customers on any
cluster, and a customer is in or out with all of its rows. Spark finds them without gathering every
id: a hash threshold a little above the wanted share picks the candidates, the driver orders those
(about `max_customers` pairs) and the rows are filtered against the last sampled (hash, id) key. Only
the sampled customers' rows reach the driver, where training runs as usual; the BTYD purchase models
are fitted on every customer of the source (`jobs.spark.btyd`), from the same keyed rows, kept on disk
while the training source is open.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from core import defaults
from core.errors import DataError
from core.units import NS_PER_DAY
from features.validate import LoadResult
from jobs.load import LoadOptions
from jobs.spark import partition
from jobs.spark.jobs import KeyedRows, ValidationOptions, keyed_rows, write_rejects
from jobs.spark.source import KEY, ROW

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

SAMPLE_RULE = "smallest xxhash64(seed, customer_id), ties by customer_id"
_HASH_SPAN = 2.0**64  # xxhash64 is uniform over the signed 64-bit integers
_MARGIN_SIGMAS = 6.0  # candidates above the wanted share: fewer than max_customers about once in 1e9 runs


@dataclass(frozen=True)
class TrainingSource:
    """A Spark source read for training: its rows keyed by customer (persisted while open) and their validation."""

    keyed: KeyedRows
    validation: ValidationOptions
    path: str


@contextmanager
def open_training_source(
    spark: SparkSession, transactions: str, options: LoadOptions, *, partition_rows: int = defaults.SPARK_PARTITION_ROWS
) -> Iterator[TrainingSource]:
    """Read `transactions` with Spark and keep its keyed rows on disk while the training uses them."""
    from pyspark import StorageLevel

    validation = ValidationOptions.from_load_options(options)
    keyed = keyed_rows(spark, transactions, validation, sep=options.sep, header=options.header, partition_rows=partition_rows)
    keyed = KeyedRows(keyed.source, keyed.frame.persist(StorageLevel.DISK_ONLY), keyed.n_rows, keyed.n_partitions)
    try:
        yield TrainingSource(keyed, validation, transactions)
    finally:
        keyed.frame.unpersist()


@dataclass(frozen=True)
class CustomerSample:
    """The sampled customers' rows, validated on the driver, and what the source held."""

    loaded: LoadResult
    """The sampled rows through `validate_transactions` (its summary describes the sample)."""
    source_customers: int
    """Customers with at least one accepted row in the whole source."""
    sampled_customers: int
    source_rows: int
    source_rejected: int
    rejects_path: Path | None
    """The whole source's rejected rows with their reason (None when none was rejected)."""
    seed: int
    last_day: pd.Timestamp
    """The day of the source's latest accepted row (the run's E unless --as-of says otherwise)."""

    def params(self) -> dict[str, Any]:
        """What the training run logs to MLflow about the sample."""
        return {
            "engine": "spark",
            "spark_source_customers": self.source_customers,
            "spark_sampled_customers": self.sampled_customers,
            "spark_source_rows": self.source_rows,
            "spark_sample_rule": SAMPLE_RULE,
            "spark_sample_seed": self.seed,
        }

    def lines(self) -> list[str]:
        """The sample in a few lines for the command's output."""
        lines = [
            f"spark source: {self.source_rows:,} rows, {self.source_customers:,} customers with an accepted row",
            f"sampled: {self.sampled_customers:,} customers ({SAMPLE_RULE}, seed {self.seed}), "
            f"{len(self.loaded.transactions):,} rows to the driver",
        ]
        if self.rejects_path is not None:
            lines.append(f"rejects: {self.source_rejected:,} rows of the source with their reason -> {self.rejects_path}")
        return lines


def customer_hash(seed: int, column: Column) -> Column:
    """The sampling hash of a customer id column."""
    from pyspark.sql import functions as F

    return F.xxhash64(F.lit(seed), column)


def last_sampled_key(customers: DataFrame, n_customers: int, max_customers: int, seed: int) -> tuple[int, str]:
    """The (hash, customer_id) of the last customer in the sample: candidates by threshold, ordered on the driver."""
    share = max_customers / n_customers
    share = min(1.0, share + _MARGIN_SIGMAS * math.sqrt(share * (1 - share) / n_customers))
    threshold = int(-(2.0**63) + share * _HASH_SPAN) if share < 1.0 else None
    hashed = customers.select(customer_hash(seed, customers["customer_id"]).alias("hash"), "customer_id")
    if threshold is not None:
        hashed = hashed.filter(hashed["hash"] < threshold)
    candidates = hashed.toArrow().to_pandas().sort_values(["hash", "customer_id"], kind="stable")
    last = candidates.iloc[min(max_customers, len(candidates)) - 1]
    return int(last["hash"]), str(last["customer_id"])


def sample_customers(source: TrainingSource, *, max_customers: int, seed: int, rejects_out: str) -> CustomerSample:
    """Write the source's rejects and bring at most `max_customers` customers' rows to the driver."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from features.validate import validate_transactions

    if max_customers < 1:
        raise DataError(f"the training sample needs at least one customer, got {max_customers}")
    keyed, validation = source.keyed, source.validation
    customers = keyed.run(
        functools.partial(partition.customer_rows, options=validation.as_kwargs()),
        pa.schema([pa.field("customer_id", pa.string()), pa.field("last_ns", pa.int64())]),
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        n_customers, last_ns = customers.agg(F.count("*"), F.max("last_ns")).collect()[0]
        if n_customers == 0:
            raise DataError(f"no usable transaction row in {source.path}")
        rows = keyed.frame
        if n_customers > max_customers:
            last_hash, last_id = last_sampled_key(customers, n_customers, max_customers, seed)
            hashed = customer_hash(seed, F.col(KEY))
            rows = rows.filter((hashed < last_hash) | ((hashed == last_hash) & (F.col(KEY) <= last_id)))
        table = rows.toArrow()
        rejects_path = Path(rejects_out)
        n_rejected = write_rejects(keyed, validation, rejects_path, write_empty=False)
    finally:
        customers.unpersist()
    table = table.take(pa.compute.sort_indices(table, [(ROW, "ascending")]))  # source order, as the local engine reads
    raw = partition.source_frame(table, keyed.source.columns, keyed.source.nanosecond_columns)
    loaded = validate_transactions(raw, **validation.as_kwargs())
    return CustomerSample(
        loaded=loaded,
        source_customers=int(n_customers),
        sampled_customers=int(loaded.transactions["customer_id"].nunique()),
        source_rows=keyed.n_rows,
        source_rejected=n_rejected,
        rejects_path=rejects_path if n_rejected else None,
        seed=seed,
        last_day=pd.Timestamp(int(last_ns) // NS_PER_DAY * NS_PER_DAY),
    )


def log_sample(run_id: str, tracking_uri: str, sample: CustomerSample) -> None:
    """Add the sample's params to the training run (its own `data_*` params describe the sample)."""
    from mlflow import MlflowClient
    from mlflow.entities import Param

    params = [Param(name, str(value)) for name, value in sample.params().items()]
    MlflowClient(tracking_uri=tracking_uri).log_batch(run_id, params=params)
