"""Frames as JSON-ready records: floats stay float64 (JSON round-trips them exactly), no NaN, days as dates."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd


def json_value(value: Any) -> Any:
    """One cell as a JSON-ready Python value: NaN, inf and NA as None, midnight timestamps as dates."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | np.datetime64):
        stamp = pd.Timestamp(value)
        return stamp.date() if stamp == stamp.normalize() else stamp.to_pydatetime()
    if isinstance(value, dt.datetime) and value == dt.datetime.combine(value.date(), dt.time()):
        return value.date()
    return value


def score_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a frame as plain dicts (one pass over the cells of a bounded API answer)."""
    names = [str(name) for name in frame.columns]
    cells = frame.to_numpy(dtype=object).tolist()
    return [{name: json_value(value) for name, value in zip(names, row, strict=True)} for row in cells]


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Any small frame as plain dicts (a meaningful index becomes a column)."""
    keep_index = not isinstance(frame.index, pd.RangeIndex)
    return score_rows(frame.reset_index() if keep_index else frame)
