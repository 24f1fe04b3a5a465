"""A transaction log as flat numpy arrays sorted by customer then time, with integer customer codes.

Every feature is a reduction over these arrays (`np.bincount`, `np.add.reduceat`, ...), so sorting and
coding the customers is the one step that costs: a log from `load_transactions` (or the generator) is
already sorted by `customer_id` then `timestamp`, which is detected in one linear pass and not redone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import DataError
from core.units import NS_PER_DAY


@dataclass(frozen=True)
class CustomerRows:
    """Rows of a transaction log in (customer_id, timestamp) order.

    Attributes
    ----------
    frame : the source frame (optional columns are read from it through `order`).
    code : int64 array, the customer of each row as 0..n_customers-1, in ascending `customer_id` order.
    ids : Index of the customer ids, one per code.
    timestamp_ns, day : int64 arrays, nanoseconds and whole days since 1970-01-01.
    amount : float64 array, signed (returns negative).
    is_return : bool array.
    order : int64 array of source row positions (None when the source was already in this order).
    """

    frame: pd.DataFrame
    order: np.ndarray | None
    code: np.ndarray
    ids: pd.Index
    timestamp_ns: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    is_return: np.ndarray

    @property
    def n_customers(self) -> int:
        """Number of distinct customers in the log."""
        return len(self.ids)

    def column(self, name: str, dtype: type | str | None = None) -> np.ndarray | None:
        """A source column in this order as a numpy array, or None when the log lacks it."""
        if name not in self.frame.columns:
            return None
        values = self.frame[name]
        array = values.to_numpy(dtype=dtype, na_value=_na_value(dtype)) if dtype is not None else values.to_numpy()
        return array if self.order is None else array[self.order]

    def strings(self, name: str) -> pa.ChunkedArray | None:
        """A text column in this order as an Arrow array (nulls kept), or None when the log lacks it."""
        if name not in self.frame.columns:
            return None
        array = _arrow_strings(self.frame[name])
        return array if self.order is None else array.take(pa.array(self.order))

    def category_codes(self, name: str) -> np.ndarray | None:
        """Integer codes of a text column in this order (-1 where missing), or None when the log lacks it."""
        if name not in self.frame.columns:
            return None
        codes, _ = pd.factorize(self.frame[name], sort=False)
        codes = codes.astype(np.int64)
        return codes if self.order is None else codes[self.order]


def _na_value(dtype: type | str) -> object:
    if dtype is bool:
        return False
    if dtype is float or dtype == "float64":
        return np.nan
    return None


def _arrow_strings(values: pd.Series) -> pa.ChunkedArray:
    """A text column as an Arrow string array (zero copy for pandas' Arrow-backed `str` dtype)."""
    if not isinstance(values.dtype, pd.StringDtype):
        values = values.astype("str")
    array = pa.array(values.array)
    return array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])


def timestamps_ns(values: pd.Series) -> np.ndarray:
    """Timestamps as int64 nanoseconds since the epoch (time-zone aware values in UTC)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    if not pd.api.types.is_datetime64_dtype(values):
        raise DataError("the timestamp column is not datetime; load the log with features.load_transactions")
    return values.to_numpy(dtype="datetime64[ns]").view(np.int64)


def as_of_day(value: object) -> int:
    """A date (string, date or timestamp) as whole days since 1970-01-01; the time of day is dropped."""
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise DataError(f"not a date: {value!r} (use YYYY-MM-DD)") from exc
    if pd.isna(stamp):
        raise DataError(f"not a date: {value!r} (use YYYY-MM-DD)")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int(stamp.normalize().as_unit("ns").value // NS_PER_DAY)


def code_time_order(codes: np.ndarray, stamp: np.ndarray) -> np.ndarray:
    """Positions sorting rows by (code, stamp), stable for ties: one integer sort of a combined key.

    (np.lexsort does the same with one indirect merge sort per key, several times slower.)
    """
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    distinct, stamp_rank = np.unique(stamp, return_inverse=True)
    key = codes.astype(np.int64) * len(distinct) + stamp_rank.astype(np.int64)
    return np.argsort(key, kind="stable")


def sort_rows(transactions: pd.DataFrame) -> CustomerRows:
    """Code the customers and order the rows by (customer_id, timestamp), stable for ties."""
    missing = [name for name in ("customer_id", "timestamp", "amount") if name not in transactions.columns]
    if missing:
        raise DataError(
            f"the transactions lack column(s) {', '.join(missing)}; load them with features.load_transactions"
        )
    ids = _arrow_strings(transactions["customer_id"])
    if ids.null_count:
        raise DataError("the transactions have missing customer ids; load them with features.load_transactions")
    stamp = timestamps_ns(transactions["timestamp"])
    amount = transactions["amount"].to_numpy(dtype=float, na_value=np.nan)
    if "is_return" in transactions.columns:
        is_return = transactions["is_return"].to_numpy(dtype=bool, na_value=False)
    else:
        is_return = amount < 0

    n = len(transactions)
    order: np.ndarray | None = None
    if n > 1:
        new_customer = pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
        ascending = pc.all(pc.less_equal(ids[:-1], ids[1:])).as_py()
        in_time = bool(np.all(new_customer | (stamp[1:] >= stamp[:-1])))
        if ascending and in_time:
            code = np.zeros(n, dtype=np.int64)
            np.cumsum(new_customer, out=code[1:])
            starts = np.flatnonzero(np.concatenate(([True], new_customer)))
        else:
            codes, _ = pd.factorize(transactions["customer_id"].astype("str"), sort=True)
            order = code_time_order(codes, stamp)
            code = codes[order].astype(np.int64)
            stamp, amount, is_return = stamp[order], amount[order], is_return[order]
            starts = np.flatnonzero(np.concatenate(([True], code[1:] != code[:-1])))
    else:
        code = np.zeros(n, dtype=np.int64)
        starts = np.arange(n)
    source_rows = starts if order is None else order[starts]
    customer_ids = transactions["customer_id"].iloc[source_rows]
    index = pd.Index(customer_ids.astype("str").array, name="customer_id")
    return CustomerRows(
        frame=transactions,
        order=order,
        code=code,
        ids=index,
        timestamp_ns=stamp,
        day=stamp // NS_PER_DAY,
        amount=amount,
        is_return=is_return,
    )
