"""Turn a raw export into a validated transaction log; every unusable row goes to rejects with its reason.

A row is rejected for the first of these that applies (`features.schema.REJECT_REASONS`):

- `missing_customer_id`: no customer id (empty, blank or missing);
- `bad_timestamp`: the timestamp cannot be parsed (or is outside 1678..2261);
- `bad_amount`: the amount (or quantity x unit_price) is missing, not a number or infinite;
- `zero_amount`: an amount of 0 on a row that is not flagged as a return;
- `duplicate`: an exact copy (every source column equal) of an earlier row, unless duplicates are kept.

Accepted rows are mapped onto the contract (ARCHITECTURE.md): customer ids are strings (`17850.0`
and `17850` are one customer, `17850`), a row is a return when flagged or when its amount is
negative, and a return's amount is stored negative. The validated frame is sorted by customer_id
then timestamp (stable), the order `build_features` works in, and checked against the pandera
schema `features.schema.TRANSACTIONS_SCHEMA`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.errors import DataError
from features.customer_rows import code_time_order
from features.io import read_table
from features.schema import (
    CONTRACT_FIELDS,
    NUMERIC_FIELDS,
    REJECT_REASONS,
    TEXT_FIELDS,
    TRANSACTIONS_SCHEMA,
)

logger = logging.getLogger(__name__)

_TRUE = ["1", "1.0", "true", "t", "yes", "y", "return", "returned"]
_EARLIEST = np.datetime64("1678-01-01")  # the range of datetime64[ns]
_LATEST = np.datetime64("2261-12-31")
_UNPARSED = np.iinfo(np.int64).min
_INTEGER_TEXT = r"^([+-]?[0-9]+)\.0*$"
_GROUPED_NUMBER = r"^[$€£¥\s]*([+-]?)[$€£¥\s]*([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]+)?\s*$"


class NoUsableRows(DataError):
    """Every row was rejected; `result` still holds each row's reason (its transactions are empty)."""

    def __init__(self, message: str, result: LoadResult):
        super().__init__(message)
        self.result = result


@dataclass
class LoadResult:
    """What a load gives back.

    Attributes
    ----------
    transactions : the validated log (contract columns, sorted by customer_id then timestamp).
    rejects : every rejected row with its source values, its position `row` among the data rows
        (0-based) and its `reason`.
    summary : rows_read, rows_accepted, rows_rejected, rejected_by_reason (reason -> count, reasons
        that occurred), customers, returns, first_timestamp and last_timestamp (ISO text or None),
        and `source` (the file) after `load_transactions`.
    """

    transactions: pd.DataFrame
    rejects: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def load_transactions(
    path: str | os.PathLike[str],
    mapping: dict[str, str] | None = None,
    sep: str | None = None,
    date_format: str | None = None,
    keep_duplicates: bool = False,
    header: bool | None = None,
    encoding: str | None = None,
) -> LoadResult:
    """Read a transaction export (CSV, TSV, whitespace text, Parquet, JSON, ...), map and validate it.

    `mapping` maps contract fields to source columns (`{"customer_id": "CustomerID"}`); a source
    given as a column number (`"0"`) picks a column by position, which is how a file without a
    header row is mapped. `sep` is the field separator of text files (sniffed when None; `\\s+`
    for whitespace), `date_format` a strftime format of the timestamps (inferred when None),
    `header` whether a text file has a header row (when None: not when every mapped source is a
    column number, else detected: a first row of only numbers and dates is data), `encoding` the
    text encoding (None: UTF-8 or the file's byte-order mark; never decoded with replacements).
    """
    if header is None and mapping and all(str(source).isdigit() for source in mapping.values()):
        header = False  # columns named by number: the file has no header row
    raw = read_table(path, sep=sep, header=header, encoding=encoding)
    result = validate_transactions(raw, mapping=mapping, date_format=date_format, keep_duplicates=keep_duplicates)
    result.summary["source"] = str(path)
    return result


def validate_transactions(
    raw: pd.DataFrame,
    mapping: dict[str, str] | None = None,
    date_format: str | None = None,
    keep_duplicates: bool = False,
    check_schema: bool = True,
    allow_empty: bool = False,
) -> LoadResult:
    """Validate an in-memory frame of raw transactions (e.g. records posted to the API) against the contract.

    Rejected rows keep their position in `raw` in the `row` column of the rejects. Raises DataError
    when a required column is missing or no row is usable. `check_schema=False` skips re-checking the
    output against the pandera schema (~8 ms whatever the size): for the API, whose rows pydantic
    has already typed at the edge and whose output is built by the code every file load checks.
    `allow_empty=True` returns an empty log instead (a partition of a larger log may hold only bad rows).
    """
    raw = raw.reset_index(drop=True)
    fields = _apply_mapping(raw, mapping or {})
    n_rows = len(raw)
    reason = np.zeros(n_rows, dtype=np.int8)  # 0 = accepted, k = REJECT_REASONS[k - 1]

    def reject(mask: np.ndarray, why: str) -> None:
        reason[mask & (reason == 0)] = REJECT_REASONS.index(why) + 1

    customer_id = normalise_customer_ids(fields["customer_id"])
    reject(customer_id.isna().to_numpy(), "missing_customer_id")
    timestamp_ns = _timestamps(fields["timestamp"], date_format)
    reject(timestamp_ns == _UNPARSED, "bad_timestamp")
    amount = _amounts(fields)
    reject(~np.isfinite(amount), "bad_amount")
    flagged = _flags(fields["is_return"]) if "is_return" in fields else np.zeros(n_rows, dtype=bool)
    # A zero amount is neither a sale nor a refund (free samples, write-offs); a flagged return may be 0.
    reject((amount == 0) & ~flagged, "zero_amount")

    usable = np.flatnonzero(reason == 0)
    order = usable[_customer_time_order(customer_id.iloc[usable], timestamp_ns[usable])]
    if not keep_duplicates:
        duplicate = _duplicates(raw, order, customer_id, timestamp_ns)
        reject(duplicate, "duplicate")
        order = order[~duplicate[order]]

    is_return, signed = signed_amounts(amount, flagged)
    transactions = _contract_frame(fields, order, customer_id, timestamp_ns, signed, is_return)
    rejects = _rejects(raw, reason)
    summary = _summary(n_rows, transactions, reason)
    if transactions.empty and not allow_empty:
        by_reason = ", ".join(f"{k}: {v:,}" for k, v in summary["rejected_by_reason"].items()) or "no rows"
        raise NoUsableRows(
            f"no usable rows: all {n_rows:,} rows were rejected ({by_reason})",
            LoadResult(transactions=transactions, rejects=rejects, summary=summary),
        )
    if check_schema:
        TRANSACTIONS_SCHEMA.validate(transactions, lazy=False)
    logger.info("validated %d rows: %d accepted, %d rejected", n_rows, len(transactions), len(rejects))
    return LoadResult(transactions=transactions, rejects=rejects, summary=summary)


def _apply_mapping(raw: pd.DataFrame, mapping: dict[str, str]) -> dict[str, pd.Series]:
    """The source column of each contract field the frame has; fail clearly on what is missing."""
    unknown = sorted(set(mapping) - set(CONTRACT_FIELDS))
    if unknown:
        raise DataError(
            f"unknown contract field(s) in the column mapping: {', '.join(unknown)}; "
            f"fields are {', '.join(CONTRACT_FIELDS)}"
        )
    columns = {str(c): c for c in raw.columns}
    found = ", ".join(columns) or "none"
    chosen: dict[str, Any] = {}
    for name, source in mapping.items():
        if source in columns:
            chosen[name] = columns[source]
        elif source.isdigit() and int(source) < raw.shape[1]:
            chosen[name] = raw.columns[int(source)]  # a column number, for files without a header
        else:
            raise DataError(f"column {source!r} (mapped to {name}) is not in the file; columns found: {found}")
    taken = {str(c) for c in chosen.values()}
    for name in CONTRACT_FIELDS:
        if name not in chosen and name in columns and name not in taken:
            chosen[name] = columns[name]
    has_amount = "amount" in chosen or {"quantity", "unit_price"} <= set(chosen)
    missing = [name for name in ("customer_id", "timestamp") if name not in chosen]
    if not has_amount:
        missing.append("amount (or quantity and unit_price)")
    if missing:
        raise DataError(
            f"missing required column(s): {', '.join(missing)}; map them with --map field=Column "
            f"(columns found: {found})"
        )
    return {name: raw[source] for name, source in chosen.items()}


def normalise_customer_ids(values: pd.Series) -> pd.Series:
    """Ids as strings: `17850`, `17850.0`, ` 17850 ` and 17850 are one customer; blanks are missing (NaN)."""
    if pd.api.types.is_bool_dtype(values):
        values = values.astype(object)
    if pd.api.types.is_float_dtype(values):
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        whole = np.isfinite(numbers) & (numbers == np.round(numbers)) & (np.abs(numbers) < 2**62)
        text = np.where(whole, np.nan_to_num(numbers).astype(np.int64).astype(str), numbers.astype(str))
        text = pd.Series(text, index=values.index, dtype="str")
        return text.mask(~np.isfinite(numbers))
    if pd.api.types.is_integer_dtype(values):
        return values.astype("str")
    text = values if isinstance(values.dtype, pd.StringDtype) else values.astype("str")
    array = pa.array(text.array)
    # Whitespace at an end (RE2's \s is among the Unicode spaces `utf8_trim_whitespace` trims) or an
    # empty id: the regular expression runs only when trimming changes something, as a blank is rare
    # (0.08 s a column of 1.1M ids against 0.015-0.05 s for the trim).
    edges = not pc.utf8_trim_whitespace(array).equals(array) and pc.any(pc.match_substring_regex(array, r"^\s|\s$")).as_py()
    if edges or pc.min(pc.binary_length(array)).as_py() == 0:
        array = pc.utf8_trim_whitespace(array)
        array = pc.if_else(pc.equal(array, ""), pa.scalar(None, array.type), array)
    ids = pd.Series(pd.array(array, dtype="str"), index=values.index)
    decimal = pc.fill_null(pc.match_substring(array, "."), False).to_numpy(zero_copy_only=False)
    if decimal.any():  # only the few ids written as `17850.0` pay for the regular expression
        ids[decimal] = ids[decimal].str.replace(_INTEGER_TEXT, r"\1", regex=True)
    return ids


def _timestamps(values: pd.Series, date_format: str | None) -> np.ndarray:
    """Timestamps as int64 ns (tz-aware values in UTC, made naive); int64 min where unparseable."""
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        return _nanoseconds(values)
    if pd.api.types.is_float_dtype(values):  # e.g. 19970101.0 written by a float column
        values = normalise_customer_ids(values)
    text = values.astype("str").str.strip()
    stamp = _nanoseconds(pd.to_datetime(text, format=date_format, errors="coerce", utc=True))
    failed = (stamp == _UNPARSED) & text.notna().to_numpy() & (text != "").to_numpy()
    if date_format is None and failed.any():
        # Mixed formats in one column: parse each distinct failing value on its own.
        unique = pd.unique(text[failed].to_numpy())
        retry = _nanoseconds(pd.Series(pd.to_datetime(unique, format="mixed", errors="coerce", utc=True)))
        stamp[failed] = pd.Series(retry, index=unique).reindex(text[failed].to_numpy()).to_numpy()
    return stamp


def _nanoseconds(parsed: pd.Series) -> np.ndarray:
    """Parsed datetimes (any unit, naive or tz-aware) as int64 ns; int64 min where missing or out of range."""
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    values = parsed.to_numpy()
    valid = ~np.isnat(values) & (values >= _EARLIEST) & (values <= _LATEST)
    as_ns = values.astype("datetime64[ns]", casting="unsafe").view(np.int64)
    return np.where(valid, as_ns, _UNPARSED)


def _numbers(values: pd.Series) -> np.ndarray:
    """Numbers from numeric or text columns as float64; anything unparseable is NaN."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=float, na_value=np.nan)
    text = values.astype("str").str.strip()
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan, copy=True)
    failed = np.isnan(numbers) & text.notna().to_numpy()
    if failed.any():
        # Currency symbols and thousands separators: "$1,234.50" (never "1,5": that is ambiguous).
        retry = text[failed].str.extract(_GROUPED_NUMBER)
        cleaned = retry[0].fillna("") + retry[1].str.replace(",", "", regex=False) + retry[3].fillna("")
        numbers[failed] = pd.to_numeric(cleaned.where(retry[1].notna()), errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
    return numbers


def _amounts(fields: dict[str, pd.Series]) -> np.ndarray:
    """The amount column, or quantity x unit_price where the amount is absent or missing."""
    product = None
    if "quantity" in fields and "unit_price" in fields:
        product = _numbers(fields["quantity"]) * _numbers(fields["unit_price"])
    if "amount" not in fields:
        assert product is not None  # _apply_mapping guarantees one or the other
        return product
    amount = _numbers(fields["amount"])
    if product is not None:
        amount = np.where(np.isnan(amount), product, amount)
    return amount


def _flags(values: pd.Series) -> np.ndarray:
    """Booleans from bool, 0/1 or yes/no/true/false text; missing or anything else is false."""
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=bool, na_value=False)
    if pd.api.types.is_numeric_dtype(values):
        return np.nan_to_num(values.to_numpy(dtype=float, na_value=np.nan)) != 0
    text = values.astype("str").str.strip().str.lower()
    return text.isin(_TRUE).to_numpy(dtype=bool, na_value=False)


def _texts(values: pd.Series) -> pd.Series:
    """Optional text fields as strings (`123.0` as `123`), blanks as missing."""
    return normalise_customer_ids(values)


def _customer_time_order(customer_id: pd.Series, timestamp_ns: np.ndarray) -> np.ndarray:
    """Positions that sort the rows by customer id then timestamp, stable for ties."""
    n = len(customer_id)
    if n < 2:
        return np.arange(n)
    ids = pa.array(customer_id.array)
    ascending = pc.all(pc.less_equal(ids[:-1], ids[1:])).as_py()
    if ascending:
        same = pc.equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
        if np.all(~same | (timestamp_ns[1:] >= timestamp_ns[:-1])):
            return np.arange(n)
    codes, _ = pd.factorize(customer_id, sort=True)
    return code_time_order(codes, timestamp_ns)


def _duplicates(raw: pd.DataFrame, order: np.ndarray, customer_id: pd.Series, timestamp_ns: np.ndarray) -> np.ndarray:
    """Rows (among `order`, sorted by customer then time) that repeat an earlier row in every column.

    Exact copies share customer and timestamp, so only rows whose (customer, timestamp) occurs more
    than once are compared in full; earlier means earlier in the source.
    """
    duplicate = np.zeros(len(raw), dtype=bool)
    if len(order) < 2:
        return duplicate
    ids = pa.array(customer_id.iloc[order].array)
    stamp = timestamp_ns[order]
    same_as_previous = pc.equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False) & (stamp[1:] == stamp[:-1])
    in_group = np.zeros(len(order), dtype=bool)
    in_group[1:] |= same_as_previous
    in_group[:-1] |= same_as_previous
    candidates = np.sort(order[in_group])
    if len(candidates):
        repeated = raw.iloc[candidates].duplicated(keep="first").to_numpy()
        duplicate[candidates[repeated]] = True
    return duplicate


def _contract_frame(
    fields: dict[str, pd.Series],
    order: np.ndarray,
    customer_id: pd.Series,
    timestamp_ns: np.ndarray,
    amount: np.ndarray,
    is_return: np.ndarray,
) -> pd.DataFrame:
    """The accepted rows, in `order`, in the contract's columns and dtypes (`amount` already signed)."""
    # Most logs arrive sorted and clean: then `order` keeps every row in place and text columns
    # need no take (the frame below copies them anyway).
    in_place = len(order) == len(customer_id) and bool(np.array_equal(order, np.arange(len(order))))

    def rows_of(values: pd.Series) -> Any:
        # arrays, not Series: the frame then has no indexes to align
        return values.array if in_place else values.array.take(order)

    data: dict[str, Any] = {
        "customer_id": rows_of(customer_id),
        "timestamp": timestamp_ns[order].view("datetime64[ns]"),
        "amount": amount[order],
        "is_return": is_return[order],
    }
    for name in CONTRACT_FIELDS:
        if name in data or name not in fields:
            continue
        values = fields[name]
        if name in NUMERIC_FIELDS:
            data[name] = numeric_field(name, _numbers(values)[order])
        elif name in TEXT_FIELDS:
            data[name] = rows_of(_texts(values))
        elif name == "promo":
            data[name] = _flags(values)[order]
    return pd.DataFrame(data)


def signed_amounts(amount: np.ndarray, flagged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is_return, amount stored negative for returns): a row is a return when flagged or negative."""
    is_return = flagged | (amount < 0)
    return is_return, np.where(is_return, -np.abs(amount), amount)


def numeric_field(name: str, numbers: np.ndarray) -> np.ndarray:
    """A numeric optional field as the contract stores it: unknown (NaN) where not finite; a discount
    never negative and 0 where unknown. Changes `numbers` in place."""
    numbers[~np.isfinite(numbers)] = np.nan  # an infinite quantity or cost is unknown
    return np.abs(np.nan_to_num(numbers, nan=0.0)) if name == "discount" else numbers


def _rejects(raw: pd.DataFrame, reason: np.ndarray) -> pd.DataFrame:
    """The rejected source rows with their position (`row`) and `reason`."""
    rows = np.flatnonzero(reason)
    picked = raw.iloc[rows].reset_index(drop=True) if len(rows) else raw.iloc[:0]  # (a slice costs less)
    rejects = picked.set_axis([f"{c}_source" if str(c) in ("row", "reason") else c for c in raw.columns], axis=1)
    rejects.insert(0, "row", rows)
    rejects["reason"] = np.asarray(REJECT_REASONS, dtype=object)[reason[rows] - 1]
    return rejects


def _summary(n_rows: int, transactions: pd.DataFrame, reason: np.ndarray) -> dict[str, Any]:
    """Counts a user checks after a load: rows read = accepted + rejected, by reason."""
    counts = np.bincount(reason, minlength=len(REJECT_REASONS) + 1)
    has_rows = not transactions.empty
    stamps = transactions["timestamp"]
    return {
        "rows_read": int(n_rows),
        "rows_accepted": int(len(transactions)),
        "rows_rejected": int(n_rows - counts[0]),
        "rejected_by_reason": {why: int(counts[k + 1]) for k, why in enumerate(REJECT_REASONS) if counts[k + 1]},
        "customers": _count_sorted_ids(transactions["customer_id"]),
        "returns": int(transactions["is_return"].sum()),
        "first_timestamp": stamps.min().isoformat() if has_rows else None,
        "last_timestamp": stamps.max().isoformat() if has_rows else None,
    }


def _count_sorted_ids(ids: pd.Series) -> int:
    """Distinct values of a sorted id column (one more than the number of changes)."""
    if len(ids) < 2:
        return len(ids)
    array = pa.array(ids.array)
    return 1 + int(pc.sum(pc.not_equal(array[1:], array[:-1])).as_py() or 0)
