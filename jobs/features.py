"""`patron features`: load a transaction log, build point-in-time features, write them and the rejects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core import defaults
from core.errors import DataError
from features import build_features
from features.io import rejects_path_for, write_table
from features.validate import LoadResult
from jobs.load import LoadOptions, load_log


@dataclass(frozen=True)
class FeaturesResult:
    """What `write_features` read and wrote."""

    loaded: LoadResult
    n_customers: int
    n_columns: int
    features_path: Path
    rejects_path: Path | None  # None when no row was rejected


def write_features(
    transactions: str,
    as_of: str,
    out: str,
    options: LoadOptions,
    *,
    time_unit_days: int = defaults.TIME_UNIT_DAYS,
    horizon_days: int | None = None,
    rejects_out: str | None = None,
) -> FeaturesResult:
    """Validate a log, build one feature row per customer at `as_of` and write features and rejects."""
    loaded = load_log(transactions, options)
    features = build_features(
        loaded.transactions, as_of=as_of, time_unit_days=time_unit_days, horizon_days=horizon_days
    )
    if features.empty:
        raise DataError(f"no customer has a purchase on or before {as_of}; choose a later --as-of")
    features_path = write_table(features, out, index=True)
    rejects_path = None
    if len(loaded.rejects):
        rejects_path = write_table(loaded.rejects, rejects_out or rejects_path_for(out))
    return FeaturesResult(loaded, len(features), features.shape[1], features_path, rejects_path)
