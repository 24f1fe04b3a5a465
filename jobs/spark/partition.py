"""What runs on each Spark partition: Arrow batches in, Patron's one path on pandas, Arrow batches out.

The functions here run in the executors' Python workers through `mapInArrow`. They convert Arrow to
pandas with pyarrow itself (the conversion `pandas.read_parquet` uses in the local engine), not with
pyspark's pandas conversion, and give back batches of explicit Arrow schemas: so the partition sees
the same frame the local engine reads, whatever pandas version pyspark supports.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from jobs.spark.source import FILE, KEY, ROW, SPLIT
from targeting.tiers import BoundaryKey

_SCORERS: dict[tuple[str, str], Any] = {}


def cached_scorer(tracking_uri: str, model_uri: str) -> Any:
    """The scorer at `model_uri`, loaded from the registry once per Python worker (executor)."""
    key = (tracking_uri, model_uri)
    if key not in _SCORERS:
        from serving.model_store import mlflow_scorer_loader

        _SCORERS[key] = mlflow_scorer_loader(tracking_uri)(model_uri)
    return _SCORERS[key]


def source_frame(table: pa.Table, columns: Sequence[str], nanosecond_columns: Sequence[str]) -> pd.DataFrame:
    """The source columns as the local engine reads them: nanosecond timestamps restored, pyarrow's pandas."""
    for name in nanosecond_columns:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, table.column(name).cast(pa.int64()).cast(pa.timestamp("ns")))
    return table.select(list(columns)).to_pandas()


def key_rows(
    batches: Iterator[pa.RecordBatch],
    *,
    columns: Sequence[str],
    nanosecond_columns: Sequence[str],
    customer_column: str,
    offsets: dict[tuple[str, int], int],
) -> Iterator[pa.RecordBatch]:
    """Each row with its source row number (`ROW`) and normalised customer id (`KEY`)."""
    from features.validate import normalise_customer_ids

    seen: dict[tuple[str, int], int] = {}  # rows of each split met so far in this partition
    for batch in batches:
        files = batch.column(FILE).to_numpy(zero_copy_only=False).astype(object)
        splits = batch.column(SPLIT).to_numpy(zero_copy_only=False).astype(np.int64)
        if offsets:
            groups = pd.DataFrame({"file": files, "split": splits})
            position = groups.groupby(["file", "split"], sort=False).cumcount().to_numpy(dtype=np.int64)
            rows = np.empty(len(files), dtype=np.int64)
            # one step per split in the batch (one or two), not per row
            for (file, split), members in groups.groupby(["file", "split"], sort=False).indices.items():
                start = offsets[(str(file), int(split))] + seen.get((file, split), 0)
                rows[members] = start + position[members]
                seen[(file, split)] = seen.get((file, split), 0) + len(members)
        else:
            rows = splits  # no file metadata: the monotonically increasing id
        table = pa.Table.from_batches([batch])
        ids = source_frame(table, [customer_column], [c for c in nanosecond_columns if c == customer_column])
        keys = normalise_customer_ids(ids[customer_column])
        keys = keys.astype(object).where(keys.notna(), pd.Series(rows, dtype=str).radd("row:").to_numpy())
        out = table.select(list(columns))
        out = out.append_column(ROW, pa.array(rows, pa.int64())).append_column(KEY, pa.array(keys.to_numpy(), pa.string()))
        yield from out.to_batches()


def partition_rows(
    batches: Iterator[pa.RecordBatch], columns: Sequence[str], nanosecond_columns: Sequence[str]
) -> tuple[pd.DataFrame, np.ndarray] | None:
    """A partition's source rows in source order, and their source row numbers (None when empty)."""
    collected = [b for b in batches if b.num_rows]
    if not collected:
        return None
    table = pa.Table.from_batches(collected)
    table = table.take(pa.compute.sort_indices(table, [(ROW, "ascending")]))
    return source_frame(table, columns, nanosecond_columns), table.column(ROW).to_numpy()


def _day_microseconds(table: pa.Table) -> pa.Table:
    """Timestamps as microseconds (Spark's unit; `as_of` is a day, so nothing is lost)."""
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(pa.timestamp("us")))
    return table


def score_rows(
    batches: Iterator[pa.RecordBatch],
    *,
    columns: Sequence[str],
    nanosecond_columns: Sequence[str],
    tracking_uri: str,
    model_uri: str,
    as_of: pd.Timestamp,
    options: dict[str, Any],
    tier_boundaries: Sequence[BoundaryKey | None] | None,
    value_only: bool = False,
) -> Iterator[pa.RecordBatch]:
    """The scores of a partition's customers (Patron's one path); `value_only`: customer_id and value_score."""
    from models.prediction import score_transactions
    from serving.batch import scores_table

    loaded = partition_rows(batches, columns, nanosecond_columns)
    if loaded is None:
        return
    scorer = cached_scorer(tracking_uri, model_uri)
    scored = score_transactions(loaded[0], scorer, as_of, tier_boundaries=tier_boundaries, **options)
    if scored.scores.empty:
        return
    table = scores_table(scored.scores)
    if value_only:
        table = table.select(["customer_id", "value_score"])
    yield from _day_microseconds(table).to_batches()


def reject_rows(
    batches: Iterator[pa.RecordBatch],
    *,
    columns: Sequence[str],
    nanosecond_columns: Sequence[str],
    options: dict[str, Any],
    schema: pa.Schema,
) -> Iterator[pa.RecordBatch]:
    """The rejected rows of a partition with their source row number and reason (`schema`'s columns)."""
    from features.validate import validate_transactions

    loaded = partition_rows(batches, columns, nanosecond_columns)
    if loaded is None:
        return
    raw, rows = loaded
    rejects = validate_transactions(raw, allow_empty=True, check_schema=False, **options).rejects
    if rejects.empty:
        return
    rejects["row"] = rows[rejects["row"].to_numpy()]
    # nanosecond timestamps go back to Spark as int64 nanoseconds; the driver restores them
    stamped = pa.schema([pa.field(f.name, pa.timestamp("ns")) if f.name in nanosecond_columns else f for f in schema])
    yield from pa.Table.from_pandas(rejects, schema=stamped, preserve_index=False).cast(schema).to_batches()


def feature_rows(
    batches: Iterator[pa.RecordBatch],
    *,
    columns: Sequence[str],
    nanosecond_columns: Sequence[str],
    options: dict[str, Any],
    as_of: pd.Timestamp,
    time_unit_days: int,
    schema: pa.Schema,
    horizon_days: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """The features of a partition's customers (`features.validate_transactions` + `build_features`).

    With `horizon_days`, the labels come from `features.labels.holdout_labels` on the partition's rows
    (all of each customer's rows are here); the driver has checked that the whole log covers the
    horizon, which a partition alone cannot know.
    """
    from features import build_features
    from features.customer_rows import as_of_day, sort_rows
    from features.labels import holdout_labels
    from features.validate import validate_transactions

    loaded = partition_rows(batches, columns, nanosecond_columns)
    if loaded is None:
        return
    transactions = validate_transactions(loaded[0], allow_empty=True, **options).transactions
    features = build_features(transactions, as_of=as_of, time_unit_days=time_unit_days)
    if features.empty:
        return
    if horizon_days is not None:
        rows = sort_rows(transactions)
        labels = pd.DataFrame(holdout_labels(rows, as_of_day(as_of), horizon_days), index=rows.ids)
        features = features.join(labels, how="left")
    yield from pa.Table.from_pandas(features.reset_index(), schema=schema, preserve_index=False).to_batches()


def accepted_rows(
    batches: Iterator[pa.RecordBatch], columns: Sequence[str], nanosecond_columns: Sequence[str], options: dict[str, Any]
) -> pd.DataFrame | None:
    """A partition's accepted transactions (`features.validate_transactions`); None when there are none."""
    from features.validate import validate_transactions

    loaded = partition_rows(batches, columns, nanosecond_columns)
    if loaded is None:
        return None
    transactions = validate_transactions(loaded[0], allow_empty=True, check_schema=False, **options).transactions
    return None if transactions.empty else transactions


def last_timestamp_rows(
    batches: Iterator[pa.RecordBatch],
    *,
    columns: Sequence[str],
    nanosecond_columns: Sequence[str],
    options: dict[str, Any],
) -> Iterator[pa.RecordBatch]:
    """The latest accepted timestamp of a partition (nanoseconds), one row; none when no row is accepted."""
    transactions = accepted_rows(batches, columns, nanosecond_columns, options)
    if transactions is not None:
        last = transactions["timestamp"].max().as_unit("ns").value
        yield pa.RecordBatch.from_pydict({"last_ns": pa.array([last], pa.int64())})


def customer_rows(
    batches: Iterator[pa.RecordBatch],
    *,
    columns: Sequence[str],
    nanosecond_columns: Sequence[str],
    options: dict[str, Any],
) -> Iterator[pa.RecordBatch]:
    """The customers of a partition with at least one accepted row, each once (a customer's rows share a
    partition), with the latest accepted timestamp of their rows (`last_ns`, nanoseconds)."""
    transactions = accepted_rows(batches, columns, nanosecond_columns, options)
    if transactions is not None:
        last = transactions.groupby("customer_id", sort=False)["timestamp"].max()
        yield pa.RecordBatch.from_pydict(
            {
                "customer_id": pa.array(np.asarray(last.index, dtype=object), pa.string()),
                "last_ns": pa.array(last.to_numpy(dtype="datetime64[ns]").view(np.int64), pa.int64()),
            }
        )


PURCHASE_COUNT_SCHEMA = pa.schema(
    [
        pa.field("as_of_day", pa.int64()),
        pa.field("frequency", pa.float64()),
        pa.field("recency", pa.float64()),
        pa.field("T", pa.float64()),
        pa.field("customers", pa.int64()),
    ]
)
"""A partition's distinct (frequency, recency, T) rows at each as-of day (days since 1970) with their customers."""


def purchase_count_rows(
    batches: Iterator[pa.RecordBatch],
    *,
    columns: Sequence[str],
    nanosecond_columns: Sequence[str],
    options: dict[str, Any],
    as_of_dates: Sequence[pd.Timestamp],
    time_unit_days: int,
) -> Iterator[pa.RecordBatch]:
    """Each as-of date's distinct (frequency, recency, T) rows of the partition's customers, counted
    (`features.rfm_summary`, the definition `build_features` uses): at most one row per distinct triple."""
    from features import rfm_summary
    from features.customer_rows import as_of_day

    transactions = accepted_rows(batches, columns, nanosecond_columns, options)
    if transactions is None:
        return
    for as_of in as_of_dates:
        summary = rfm_summary(transactions, as_of, time_unit_days)
        if summary.empty:
            continue
        counts = summary.groupby(["frequency", "recency", "T"], sort=False).size().rename("customers").reset_index()
        counts.insert(0, "as_of_day", np.int64(as_of_day(as_of)))
        counts["customers"] = counts["customers"].astype(np.int64)
        yield from pa.Table.from_pandas(counts, schema=PURCHASE_COUNT_SCHEMA, preserve_index=False).to_batches()
