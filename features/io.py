"""Every file read and write of Patron's data: tables in (CSV, TSV, whitespace, Parquet, JSON, ...) and out."""

from __future__ import annotations

import csv
import gzip
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from features.errors import DataError

WHITESPACE = r"\s+"
_TEXT_SUFFIXES = {".csv", ".txt", ".tsv", ".dat", ".psv"}
_SNIFF_DELIMITERS = ",;\t| "


def _suffixes(path: Path) -> list[str]:
    """Lower-case suffixes without a trailing compression suffix (`a.csv.gz` -> ['.csv'])."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in {".gz", ".bz2", ".zst", ".xz", ".zip"}:
        suffixes = suffixes[:-1]
    return suffixes


def _sniff_separator(path: Path) -> str:
    """Guess the field separator of a text table from its first lines."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:  # type: ignore[operator]
        sample = "".join(handle.readline() for _ in range(20))
    if not sample.strip():
        raise DataError(f"{path} is empty")
    lines = [line for line in sample.splitlines() if line.strip()]
    for delimiter in ",\t;|":
        counts = {line.count(delimiter) for line in lines}
        if len(counts) == 1 and counts != {0}:
            return delimiter
    if not any(d in sample for d in ",\t;|"):
        return WHITESPACE
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=_SNIFF_DELIMITERS).delimiter
    except csv.Error:
        delimiter = ","
    return WHITESPACE if delimiter == " " else delimiter


def read_table(path: str | os.PathLike[str], sep: str | None = None, header: bool = True) -> pd.DataFrame:
    """Read a table of raw values; text formats are read as strings so rejects keep what the file said."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a table file")
    suffix = (_suffixes(path) or [""])[-1]
    try:
        if suffix in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
            if not header:
                frame.columns = [str(i) for i in range(frame.shape[1])]
            return frame
        if suffix in {".json", ".jsonl", ".ndjson"}:
            return pd.read_json(path, lines=suffix != ".json", dtype=False)
        if suffix in _TEXT_SUFFIXES or suffix == "":
            if sep is None:
                sep = "\t" if suffix == ".tsv" else _sniff_separator(path)
            frame = pd.read_csv(
                path,
                sep=sep,
                header=0 if header else None,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                engine="c" if sep == WHITESPACE or len(sep) == 1 else "python",
                skipinitialspace=True,
            )
            frame.columns = [str(c).strip() for c in frame.columns]
            return frame
        return _read_with_duckdb(path)
    except DataError:
        raise
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {path}: {reason}") from exc


def _read_with_duckdb(path: Path) -> pd.DataFrame:
    """Read any other format DuckDB understands (e.g. .csv.zst, .ndjson variants)."""
    import duckdb

    try:
        return duckdb.sql("SELECT * FROM read_auto(?)", params=[str(path)]).df()  # type: ignore[call-arg]
    except Exception:  # noqa: BLE001 - fall back to DuckDB's own format detection
        try:
            escaped = str(path).replace("'", "''")
            return duckdb.sql(f"SELECT * FROM '{escaped}'").df()
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"cannot read {path}: unknown format ({exc.__class__.__name__})") from exc


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str], index: bool = False) -> Path:
    """Write CSV or Parquet (by extension) to a temporary file, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = (_suffixes(path) or [""])[-1]
    if suffix not in {".csv", ".parquet", ".pq", ".tsv"}:
        raise DataError(f"cannot write {path}: use a .csv, .tsv or .parquet file name")
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        if suffix in {".parquet", ".pq"}:
            frame.to_parquet(tmp_name, index=index, compression="zstd")
        else:
            frame.to_csv(tmp_name, index=index, sep="\t" if suffix == ".tsv" else ",")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def positional_header(mapping: dict[str, str] | None) -> bool:
    """True when the file has a header: a mapping given wholly by column numbers means it has none."""
    sources: Iterable[str] = (mapping or {}).values()
    sources = list(sources)
    return not (sources and all(source.isdigit() for source in sources))
