"""Reading a transaction log for a job: the options a user gives and the summary of what was read."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from features.validate import LoadResult, load_transactions


@dataclass(frozen=True)
class LoadOptions:
    """How to read a transaction log: column mapping, separator, date format, duplicates, header, encoding."""

    mapping: dict[str, str] | None = None
    sep: str | None = None
    date_format: str | None = None
    keep_duplicates: bool = False
    header: bool | None = None
    encoding: str | None = None


def load_log(path: str, options: LoadOptions) -> LoadResult:
    """Load and validate a transaction log with the given options."""
    return load_transactions(path, **asdict(options))


def data_summary_lines(summary: dict[str, Any]) -> list[str]:
    """The load summary (rows, rejects by reason, customers, returns, date range) as aligned text lines."""
    rows = [("rows read", f"{summary['rows_read']:,}"), ("rows accepted", f"{summary['rows_accepted']:,}")]
    rows.append(("rows rejected", f"{summary['rows_rejected']:,}"))
    rows += [(f"  {reason}", f"{count:,}") for reason, count in summary["rejected_by_reason"].items()]
    rows += [("customers", f"{summary['customers']:,}"), ("returns", f"{summary.get('returns', 0):,}")]
    first, last = (pd.Timestamp(summary[key]) for key in ("first_timestamp", "last_timestamp"))
    rows += [("date range", f"{first:%Y-%m-%d} .. {last:%Y-%m-%d}")]
    return [f"{label:<16}{value:>24}" for label, value in rows]
