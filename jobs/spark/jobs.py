"""The Spark jobs behind `patron score --engine spark` and `patron features --engine spark`.

Both read the source with Spark, number its rows, key them by normalised customer id, repartition by a
hash of that key (a customer's rows, wherever they were read, meet in one partition) and run Patron's
one path on each partition. The scores and features are Parquet folders with the local file's columns;
the rejects are one CSV beside them, as the local engine writes it, gathered on the driver in source
row order (rejects are a small share of a log; their number is printed).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from core import defaults
from core.errors import DataError
from jobs.load import LoadOptions
from jobs.spark import partition
from jobs.spark.source import (
    KEY,
    ROW,
    Source,
    mapped_fields,
    read_source,
    split_offsets,
    with_locations,
)
from jobs.spark.tiers import exact_tier_boundaries

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class ValidationOptions:
    """How rows are read into the contract, as for the local engine."""

    mapping: dict[str, str]
    date_format: str | None = None
    keep_duplicates: bool = False

    def as_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `validate_transactions` / `score_transactions`."""
        return {"mapping": self.mapping, "date_format": self.date_format, "keep_duplicates": self.keep_duplicates}

    @classmethod
    def from_load_options(cls, options: LoadOptions) -> ValidationOptions:
        """The validation part of a job's load options (Spark reads the text itself: sep and header go to it)."""
        return cls(mapping=dict(options.mapping or {}), date_format=options.date_format, keep_duplicates=options.keep_duplicates)


@dataclass(frozen=True)
class KeyedRows:
    """A source's rows with row numbers and customer keys, partitioned by customer."""

    source: Source
    frame: DataFrame
    n_rows: int
    n_partitions: int

    def run(self, function: Any, schema: pa.Schema) -> DataFrame:
        """`function(batches, columns=..., nanosecond_columns=...)` on each partition, giving `schema` rows."""
        from pyspark.sql.pandas.types import from_arrow_schema

        bound = functools.partial(
            function, columns=self.source.columns, nanosecond_columns=self.source.nanosecond_columns
        )
        return self.frame.mapInArrow(bound, from_arrow_schema(schema))


def partition_count(n_rows: int, partition_rows: int, parallelism: int) -> int:
    """Enough partitions that none holds more than about `partition_rows` rows, at least one per core."""
    return max(parallelism, math.ceil(n_rows / max(partition_rows, 1)), 1)


def keyed_rows(
    spark: SparkSession,
    source_path: str,
    options: ValidationOptions,
    *,
    sep: str | None = None,
    header: bool | None = None,
    partition_rows: int = defaults.SPARK_PARTITION_ROWS,
) -> KeyedRows:
    """Read `source_path`, check the mapping, number and key its rows and partition them by customer."""
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    headerless = bool(options.mapping) and all(str(s).isdigit() for s in options.mapping.values())
    source = read_source(spark, source_path, sep=sep, header=header, headerless=headerless)
    fields = mapped_fields(source.columns, options.mapping)
    located = with_locations(source)
    offsets, n_rows = split_offsets(located, source.has_file_metadata)
    if n_rows == 0:
        raise DataError(f"no rows in {source_path}")
    schema = StructType(
        [*(source.frame.schema[c] for c in source.columns), StructField(ROW, LongType(), False), StructField(KEY, StringType(), False)]
    )
    keyer = functools.partial(
        partition.key_rows,
        columns=source.columns,
        nanosecond_columns=source.nanosecond_columns,
        customer_column=fields["customer_id"],
        offsets=offsets,
    )
    n_partitions = partition_count(n_rows, partition_rows, spark.sparkContext.defaultParallelism)
    frame = located.mapInArrow(keyer, schema).repartition(n_partitions, KEY)
    return KeyedRows(source, frame, n_rows, n_partitions)


def rejects_schema(source: Source) -> pa.Schema:
    """The rejects' columns: `row`, the source columns (renamed `<c>_source` when `row`/`reason`), `reason`."""
    from pyspark.sql.pandas.types import to_arrow_type

    fields = [pa.field("row", pa.int64())]
    for name in source.columns:
        kind = to_arrow_type(source.frame.schema[name].dataType, timezone="UTC")
        fields.append(pa.field(f"{name}_source" if name in ("row", "reason") else name, kind))
    return pa.schema([*fields, pa.field("reason", pa.string())])


def write_rejects(keyed: KeyedRows, options: ValidationOptions, path: Path, *, write_empty: bool = True) -> int:
    """Validate every partition, gather the rejects in source row order and write them to `path`.

    `write_empty=False` writes nothing when no row is rejected, as the local `patron features` and
    `patron train` do (`patron score` always writes the file: it is published with the scores).
    """
    from features.io import write_table

    schema = rejects_schema(keyed.source)
    rejects = keyed.run(functools.partial(partition.reject_rows, options=options.as_kwargs(), schema=schema), schema)
    table = rejects.orderBy("row").toArrow()
    for name in keyed.source.nanosecond_columns:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, table.column(name).cast(pa.timestamp("ns")))
    frame = table.to_pandas()
    if len(frame) or write_empty:
        write_table(frame, path)
    return len(frame)


def pinned_model_uri(scorer: Any, model_uri: str) -> str:
    """The registry version the driver loaded (`models:/name/3`), so a promotion mid-job cannot split it."""
    name, version = scorer.metadata.get("model_name"), scorer.metadata.get("model_version")
    return f"models:/{name}/{version}" if name and version else model_uri


def scores_arrow_schema() -> pa.Schema:
    """The scores contract as Spark stores it: `core.scores.scores_schema()` with days in microseconds."""
    from core.scores import scores_schema

    schema = scores_schema()
    return pa.schema([pa.field(f.name, pa.timestamp("us")) if pa.types.is_timestamp(f.type) else f for f in schema])


def score_with_spark(
    spark: SparkSession,
    transactions: str,
    out: str,
    as_of: Any,
    *,
    model_uri: str,
    tracking_uri: str,
    options: ValidationOptions,
    sep: str | None = None,
    partition_rows: int = defaults.SPARK_PARTITION_ROWS,
    campaign_budget: float | None = None,
    campaign_out: str | None = None,
) -> Any:
    """Score every customer of `transactions` on Spark into the Parquet folder `out`; rejects beside it."""
    from pyspark import StorageLevel

    from features.io import rejects_path_for
    from models.prediction import as_of_timestamp
    from serving.batch import BatchResult, NothingScored, load_model

    day = as_of_timestamp(as_of)
    scorer = load_model(model_uri, tracking_uri)  # on the driver: fails early, gives metadata and policy
    keyed = keyed_rows(spark, transactions, options, sep=sep, partition_rows=partition_rows)
    keyed = KeyedRows(keyed.source, keyed.frame.persist(StorageLevel.DISK_ONLY), keyed.n_rows, keyed.n_partitions)
    try:
        score = functools.partial(
            partition.score_rows,
            tracking_uri=tracking_uri,
            model_uri=pinned_model_uri(scorer, model_uri),
            as_of=day,
            options=options.as_kwargs(),
        )
        # tiers rank the whole population, as the local batch does: its exact boundaries first
        value_schema = pa.schema([pa.field("customer_id", pa.string()), pa.field("value_score", pa.float64())])
        values = keyed.run(functools.partial(score, tier_boundaries=None, value_only=True), value_schema)
        boundaries = exact_tier_boundaries(values, scorer.policy.tier_shares)
        scores = keyed.run(functools.partial(score, tier_boundaries=boundaries), scores_arrow_schema())
        scores.sortWithinPartitions("customer_id").write.mode("overwrite").parquet(out)
        rejects_path = rejects_path_for(out)
        n_rejected = write_rejects(keyed, options, rejects_path)
    finally:
        keyed.frame.unpersist()
    written = spark.read.parquet(out)
    n_customers = written.count()
    if n_customers == 0:
        raise NothingScored(f"no customer in {transactions} has a purchase on or before {day.date()}")
    campaign = campaign_path = None
    if campaign_budget is not None:
        campaign, campaign_path = select_campaign_from(written, campaign_budget, scorer, campaign_out)
    return BatchResult(
        out_path=Path(out),
        rejects_path=rejects_path,
        n_customers=n_customers,
        n_transactions=keyed.n_rows - n_rejected,
        n_rejected=n_rejected,
        model_name=str(scorer.metadata.get("model_name", "")),
        model_version=str(scorer.metadata.get("model_version", "")),
        campaign_path=campaign_path,
        campaign=campaign,
        extra={"partitions": keyed.n_partitions, "rows_read": keyed.n_rows},
    )


def select_campaign_from(scores: DataFrame, budget: float, scorer: Any, out: str | None) -> tuple[Any, Path | None]:
    """Select the campaign on the driver from the contactable customers only (a small table)."""
    from pyspark.sql import functions as F

    from features.io import write_table
    from targeting.campaign import select_campaign
    from targeting.winback import NO_CHANNEL

    candidates = scores.filter(~F.col("exclude_from_spend") & (F.col("channel") != NO_CHANNEL))
    frame = candidates.orderBy("customer_id").toArrow().to_pandas()
    campaign = select_campaign(frame, budget, policy=getattr(scorer, "policy", None))
    path = write_table(campaign.selected, out) if out is not None else None
    return campaign, path


@dataclass(frozen=True)
class SparkFeaturesResult:
    """What `features_with_spark` wrote: the Parquet folder, its customers, the rejects file."""

    out_path: Path
    n_customers: int
    n_rejected: int
    rejects_path: Path | None  # None when no row was rejected (no file is written, as with the local engine)
    n_partitions: int


def check_horizon_on_spark(keyed: KeyedRows, options: ValidationOptions, as_of: Any, horizon_days: int) -> None:
    """Refuse labels the log does not cover, as the local engine does, from the latest accepted row of all partitions."""
    from core.units import NS_PER_DAY
    from features.customer_rows import as_of_day
    from features.pipeline import check_horizon_covered

    schema = pa.schema([pa.field("last_ns", pa.int64())])
    last = keyed.run(functools.partial(partition.last_timestamp_rows, options=options.as_kwargs()), schema)
    last_ns = last.agg({"last_ns": "max"}).collect()[0][0]
    if last_ns is not None:  # no accepted row at all: the features pass says so
        check_horizon_covered(int(last_ns) // NS_PER_DAY, as_of_day(as_of), horizon_days)


def features_with_spark(
    spark: SparkSession,
    transactions: str,
    out: str,
    as_of: Any,
    *,
    options: LoadOptions,
    time_unit_days: int = defaults.TIME_UNIT_DAYS,
    horizon_days: int | None = None,
    partition_rows: int = defaults.SPARK_PARTITION_ROWS,
    rejects_out: str | None = None,
) -> SparkFeaturesResult:
    """Write every customer's features at `as_of` (labels with `horizon_days`) as a Parquet folder; rejects beside it."""
    from pyspark import StorageLevel

    from features import build_features
    from features.io import rejects_path_for
    from models.prediction import as_of_timestamp

    day = as_of_timestamp(as_of)
    validation = ValidationOptions.from_load_options(options)
    keyed = keyed_rows(spark, transactions, validation, sep=options.sep, header=options.header, partition_rows=partition_rows)
    fields = mapped_fields(keyed.source.columns, validation.mapping)
    # the features of no rows: the arguments checked on the driver, and the columns and dtypes of this log
    template = build_features(
        pd.DataFrame(columns=[*fields, "is_return"]), as_of=day, time_unit_days=time_unit_days, horizon_days=horizon_days
    )
    schema = pa.schema(
        [pa.field("customer_id", pa.string()), *(pa.field(c, pa.from_numpy_dtype(t)) for c, t in template.dtypes.items())]
    )
    keyed = KeyedRows(keyed.source, keyed.frame.persist(StorageLevel.DISK_ONLY), keyed.n_rows, keyed.n_partitions)
    try:
        if horizon_days is not None:
            check_horizon_on_spark(keyed, validation, day, horizon_days)
        features = keyed.run(
            functools.partial(
                partition.feature_rows, options=validation.as_kwargs(), as_of=day, time_unit_days=time_unit_days,
                schema=schema, horizon_days=horizon_days,
            ),
            schema,
        )
        features.sortWithinPartitions("customer_id").write.mode("overwrite").parquet(out)
        rejects_path = Path(rejects_out) if rejects_out else rejects_path_for(out)
        n_rejected = write_rejects(keyed, validation, rejects_path, write_empty=False)
    finally:
        keyed.frame.unpersist()
    n_customers = spark.read.parquet(out).count()
    if n_customers == 0:
        raise DataError(f"no customer has a purchase on or before {day.date()}; choose a later --as-of")
    return SparkFeaturesResult(Path(out), n_customers, n_rejected, rejects_path if n_rejected else None, keyed.n_partitions)
