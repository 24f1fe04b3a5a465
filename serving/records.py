"""Score frames as JSON-ready records (numbers as Python floats, dates as dates, no NaN)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date() if value == value.normalize() else value.to_pydatetime()
    return value


def score_rows(scores: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a scores frame as plain dicts, float64 values unchanged (JSON round-trips them exactly)."""
    records = scores.to_dict(orient="records")
    return [{key: _clean(value) for key, value in record.items()} for record in records]


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Any small frame as plain dicts, with NaN as None and timestamps as dates or date-times."""
    keep_index = not isinstance(frame.index, pd.RangeIndex)
    return score_rows(frame.reset_index() if keep_index else frame)
