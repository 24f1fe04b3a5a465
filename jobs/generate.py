"""`patron generate`: write a synthetic transaction log and its ground-truth customer table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from features.io import write_table
from features.synthetic import SyntheticData, generate_transactions


@dataclass(frozen=True)
class GeneratedFiles:
    """The generated data and where its two tables went."""

    data: SyntheticData
    log_path: Path
    truth_path: Path


def truth_path_for(out: str | Path) -> Path:
    """Where the ground truth of a log written to `out` goes by default: `<stem>.truth.parquet` beside it."""
    path = Path(out)
    return path.with_name(f"{path.name.split('.')[0]}.truth.parquet")


def write_synthetic(
    customers: int, out: str, *, seed: int, start: str, end: str, truth_out: str | None = None
) -> GeneratedFiles:
    """Generate `customers` customers' transactions and write the log and its ground truth."""
    data = generate_transactions(customers, seed=seed, start=start, end=end)
    log_path = write_table(data.transactions, out)
    truth_path = write_table(data.customers, truth_out or truth_path_for(out), index=True)
    return GeneratedFiles(data, log_path, truth_path)
