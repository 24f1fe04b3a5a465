"""Reading a transaction source with Spark: files or a table, source row numbers and customer keys.

The local engine names a rejected row by its position among the data rows of the file (0-based).
Spark reads a file in splits that may arrive in any order, so each row's number is rebuilt from where
it was read: the rows of each (file, split) are counted once, the splits sorted by file name and offset
give each split's first row number, and each row adds its position within its split. A source without
file metadata (a JDBC table) numbers rows by `monotonically_increasing_id` instead: unique and in read
order, but not consecutive.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from core.errors import DataError
from features.io import WHITESPACE, has_header, normalise_sep, sniff_separator

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

ROW = "__patron_row"
"""The source row number of each row (0-based among the data rows)."""
KEY = "__patron_key"
"""The normalised customer id that partitions the rows (a missing id: the row number, to spread them)."""
FILE = "__patron_file"
SPLIT = "__patron_split"
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class Source:
    """A transaction source read by Spark: its rows, its source columns and their nanosecond timestamps."""

    frame: DataFrame
    columns: tuple[str, ...]
    nanosecond_columns: tuple[str, ...]
    """Columns holding nanosecond timestamps, read by Spark as int64 and turned back on each partition."""
    has_file_metadata: bool


def _is_path(source: str) -> bool:
    return "://" in source or Path(source).exists()


def _parquet_nanosecond_columns(path: str) -> tuple[str, ...]:
    """Columns of a Parquet file or folder stored as nanosecond timestamps (Spark reads them as int64)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        schema = ds.dataset(path, format="parquet").schema
    except (OSError, ValueError, pa.ArrowException):
        return ()
    return tuple(f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns")


def _first_lines(spark: SparkSession, path: str, count: int = 20) -> list[str]:
    return [row[0] for row in spark.read.text(path).limit(count).collect()]


def read_source(
    spark: SparkSession, source: str, *, sep: str | None = None, header: bool | None = None, headerless: bool = False
) -> Source:
    """Read Parquet (file or folder), Delta, delimited text (as strings, like the local engine) or a table name."""
    if not _is_path(source):
        if not spark.catalog.tableExists(source):
            raise DataError(f"no such file or table: {source}")
        frame = spark.table(source)
        return _source(frame, (), has_metadata=_has_file_metadata(frame))
    path = Path(source)
    is_dir = "://" not in source and path.is_dir()
    if is_dir and (path / "_delta_log").is_dir():
        try:
            frame = spark.read.format("delta").load(source)
        except Exception as exc:  # the Delta package is absent: say so in one line
            raise DataError(f"cannot read the Delta table {source}: {str(exc).splitlines()[0]}") from None
        return _source(frame, (), has_metadata=True)
    if source.endswith(PARQUET_SUFFIXES) or (is_dir and any(path.glob("*.parquet"))):
        frame = spark.read.parquet(source)
        return _source(frame, _parquet_nanosecond_columns(source), has_metadata=True)
    return _read_text(spark, source, sep, header, headerless)


def _read_text(spark: SparkSession, source: str, sep: str | None, header: bool | None, headerless: bool) -> Source:
    """Delimited text as strings: separator sniffed and header detected as the local engine does."""
    lines = _first_lines(spark, source)
    if not lines:
        raise DataError(f"{source} is empty")
    sep = normalise_sep(sep)
    if sep is None:
        sep = "\t" if source.endswith((".tsv", ".tab")) else sniff_separator(lines)
    if sep == WHITESPACE:
        raise DataError("the Spark engine reads delimited text with a one-character separator; convert "
                        "whitespace-separated files to CSV or Parquet first")
    if header is None:
        header = False if headerless else has_header(lines[0], sep)
    frame = (
        spark.read.option("header", header)
        .option("sep", sep)
        .option("inferSchema", False)
        .option("ignoreLeadingWhiteSpace", True)
        .option("mode", "PERMISSIVE")
        .csv(source)
    )
    if not header:  # the local engine names the columns of a file without header 0, 1, ...
        frame = frame.toDF(*[str(i) for i in range(len(frame.columns))])
    else:
        frame = frame.toDF(*[c.strip() for c in frame.columns])
    return _source(frame, (), has_metadata=True)


def _has_file_metadata(frame: DataFrame) -> bool:
    try:
        frame.select("_metadata.file_path").schema  # noqa: B018 - analysing is the test
    except Exception:
        return False
    return True


def _source(frame: DataFrame, nanosecond_columns: tuple[str, ...], *, has_metadata: bool) -> Source:
    columns = tuple(frame.columns)
    clash = [c for c in columns if c.startswith("__patron_")]
    if clash:
        raise DataError(f"source columns {clash} use the prefix __patron_ that Patron keeps for itself")
    return Source(frame, columns, nanosecond_columns, has_metadata)


def with_locations(source: Source) -> DataFrame:
    """The source's columns plus where each row was read (file, split start), for source row numbers."""
    from pyspark.sql import functions as F

    if not source.has_file_metadata:
        return source.frame.withColumn(FILE, F.lit("")).withColumn(SPLIT, F.monotonically_increasing_id())
    return source.frame.select(
        *[F.col(f"`{c}`") for c in source.columns],
        F.col("_metadata.file_path").alias(FILE),
        F.col("_metadata.file_block_start").alias(SPLIT),
    )


def split_offsets(located: DataFrame, has_file_metadata: bool) -> tuple[dict[tuple[str, int], int], int]:
    """The first source row number of each (file, split), and the number of rows (one pass over the source)."""
    if not has_file_metadata:
        return {}, located.count()
    counts = pd.DataFrame(located.groupBy(FILE, SPLIT).count().toPandas())
    counts = counts.sort_values([FILE, SPLIT], kind="stable")
    starts = counts["count"].cumsum() - counts["count"]
    offsets = {(str(f), int(s)): int(o) for f, s, o in zip(counts[FILE], counts[SPLIT], starts, strict=True)}
    return offsets, int(counts["count"].sum())


def mapped_fields(columns: tuple[str, ...], mapping: dict[str, str]) -> dict[str, str]:
    """Contract field -> source column, checked on the driver with the local engine's rules and messages."""
    from features.validate import _apply_mapping

    empty = pd.DataFrame({c: pd.Series(dtype="str") for c in columns})
    return {name: str(series.name) for name, series in _apply_mapping(empty, mapping).items()}
