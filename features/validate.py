"""Turn a raw export into a validated transaction log; every unusable row goes to rejects with its reason."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.errors import DataError
from features.io import positional_header, read_table
from features.schema import (
    CONTRACT_FIELDS,
    FLAG_FIELDS,
    NUMERIC_FIELDS,
    REJECT_REASONS,
    TEXT_FIELDS,
    TRANSACTIONS_SCHEMA,
)

logger = logging.getLogger(__name__)

_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n", ""}


@dataclass
class LoadResult:
    """A validated log, the rejected rows (original values plus `reason` and `row`), and the counts."""

    transactions: pd.DataFrame
    rejects: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def load_transactions(
    path: str | os.PathLike[str],
    mapping: dict[str, str] | None = None,
    sep: str | None = None,
    date_format: str | None = None,
    keep_duplicates: bool = False,
) -> LoadResult:
    """Read a transaction export, map its columns onto the contract and validate every row."""
    raw = read_table(path, sep=sep, header=positional_header(mapping))
    result = validate_transactions(raw, mapping=mapping, date_format=date_format, keep_duplicates=keep_duplicates)
    result.summary["source"] = str(path)
    return result


def validate_transactions(
    raw: pd.DataFrame,
    mapping: dict[str, str] | None = None,
    date_format: str | None = None,
    keep_duplicates: bool = False,
) -> LoadResult:
    """Validate an in-memory frame of raw transactions against the contract."""
    frame = _apply_mapping(raw, mapping or {})
    n_rows = len(frame)
    reason = np.full(n_rows, "", dtype=object)

    def reject(mask: np.ndarray, why: str) -> None:
        reason[mask & (reason == "")] = why

    customer_id = _customer_ids(frame["customer_id"])
    reject(customer_id.isna().to_numpy(), "missing_customer_id")

    timestamp = _timestamps(frame["timestamp"], date_format)
    reject(timestamp.isna().to_numpy(), "bad_timestamp")

    if "amount" in frame.columns:
        amount = _numbers(frame["amount"])
    else:
        amount = _numbers(frame["quantity"]) * _numbers(frame["unit_price"])
    amount_values = amount.to_numpy(dtype=float, na_value=np.nan)
    reject(~np.isfinite(amount_values), "bad_amount")

    flagged_return = _flags(frame["is_return"]) if "is_return" in frame.columns else np.zeros(n_rows, bool)
    is_return = flagged_return | (amount_values < 0)
    # A zero amount is neither a sale nor a refund (free samples, bad-debt write-offs at 0).
    reject(amount_values == 0, "zero_amount")

    if not keep_duplicates:
        reject(raw.duplicated(keep="first").to_numpy(), "duplicate")

    accepted = reason == ""
    clean = pd.DataFrame(
        {
            "customer_id": customer_id[accepted].astype(str).to_numpy(dtype=object),
            "timestamp": timestamp[accepted].to_numpy(dtype="datetime64[ns]"),
            "amount": np.where(is_return, -np.abs(amount_values), amount_values)[accepted],
            "is_return": is_return[accepted],
        }
    )
    for name in NUMERIC_FIELDS:
        if name in frame.columns:
            values = _numbers(frame[name]).to_numpy(dtype=float, na_value=np.nan)[accepted]
            clean[name] = np.nan_to_num(np.abs(values), nan=0.0) if name == "discount" else values
    for name in TEXT_FIELDS:
        if name in frame.columns:
            clean[name] = _texts(frame[name])[accepted].to_numpy(dtype=object)
    if "promo" in frame.columns:
        clean["promo"] = _flags(frame["promo"])[accepted]

    clean = clean.sort_values(["customer_id", "timestamp"], kind="stable", ignore_index=True)
    rejects = raw.loc[~accepted].copy()
    rejects.insert(0, "row", np.flatnonzero(~accepted))
    rejects["reason"] = reason[~accepted]
    summary = _summary(n_rows, clean, reason)
    if clean.empty:
        by_reason = ", ".join(f"{k}: {v}" for k, v in summary["rejected_by_reason"].items()) or "none"
        raise DataError(f"no usable rows: all {n_rows} rows were rejected ({by_reason})")
    TRANSACTIONS_SCHEMA.validate(clean, lazy=False)
    logger.info("validated %d rows: %d accepted, %d rejected", n_rows, summary["rows_accepted"], summary["rows_rejected"])
    return LoadResult(transactions=clean, rejects=rejects.reset_index(drop=True), summary=summary)


def _apply_mapping(raw: pd.DataFrame, mapping: dict[str, str]) -> pd.DataFrame:
    """Select and rename the source columns onto contract fields; fail clearly on what is missing."""
    unknown_fields = sorted(set(mapping) - set(CONTRACT_FIELDS))
    if unknown_fields:
        raise DataError(
            f"unknown contract field(s) in the column mapping: {', '.join(unknown_fields)}; "
            f"fields are {', '.join(CONTRACT_FIELDS)}"
        )
    columns = {str(c): c for c in raw.columns}
    missing_sources = [f"{f}={s}" for f, s in mapping.items() if s not in columns]
    if missing_sources:
        raise DataError(
            f"mapped column(s) not in the file: {', '.join(missing_sources)}; columns found: {', '.join(columns)}"
        )
    selected: dict[str, pd.Series] = {}
    for name in CONTRACT_FIELDS:
        source = mapping.get(name, name if name in columns and name not in mapping.values() else None)
        if source is not None:
            selected[name] = raw[columns[source]].reset_index(drop=True)
    frame = pd.DataFrame(selected)
    has_amount = "amount" in frame.columns or {"quantity", "unit_price"} <= set(frame.columns)
    missing = [name for name in ("customer_id", "timestamp") if name not in frame.columns]
    if not has_amount:
        missing.append("amount (or quantity and unit_price)")
    if missing:
        raise DataError(
            f"missing required column(s): {', '.join(missing)}; map them with --map field=Column "
            f"(columns found: {', '.join(columns)})"
        )
    return frame


def _customer_ids(values: pd.Series) -> pd.Series:
    """Customer ids as strings: `17850`, `17850.0` and 17850 are one customer; blanks are missing."""
    if pd.api.types.is_float_dtype(values):
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        ids = pd.Series(None, index=values.index, dtype=object)
        finite = np.isfinite(numbers)
        whole = finite & (numbers == np.round(numbers))
        ids[whole] = numbers[whole].astype(np.int64).astype(str)
        ids[finite & ~whole] = numbers[finite & ~whole].astype(str)
        return ids
    text = values.astype("string").str.strip()
    text = text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)
    return text.mask(text == "").astype(object).where(text.notna() & (text != ""), None)


def _timestamps(values: pd.Series, date_format: str | None) -> pd.Series:
    """Parse timestamps (naive local time; tz-aware values are converted to UTC and made naive)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        text = values.astype("string").str.strip()
        parsed = pd.to_datetime(text, format=date_format or "mixed", errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def _numbers(values: pd.Series) -> pd.Series:
    """Numbers from numeric or text columns; anything unparseable becomes NaN."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    text = values.astype("string").str.strip().str.replace(",", "", regex=False)
    return pd.to_numeric(text, errors="coerce").astype(float)


def _flags(values: pd.Series) -> np.ndarray:
    """Booleans from bool, 0/1 or yes/no text; anything else counts as false."""
    if pd.api.types.is_bool_dtype(values):
        return values.fillna(False).to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(values):
        return (values.fillna(0).to_numpy(dtype=float) != 0)
    text = values.astype("string").str.strip().str.lower()
    return text.isin(list(_TRUE)).fillna(False).to_numpy(dtype=bool)


def _texts(values: pd.Series) -> pd.Series:
    """Text fields as strings (`123.0` ids as `123`), missing as None."""
    if pd.api.types.is_float_dtype(values):
        return _customer_ids(values)
    text = values.astype("string").str.strip()
    return text.astype(object).where(text.notna() & (text != ""), None)


def _summary(n_rows: int, clean: pd.DataFrame, reason: np.ndarray) -> dict[str, Any]:
    """Counts a user checks after a load: rows read = accepted + rejected, by reason."""
    rejected = reason[reason != ""]
    by_reason = {why: int((rejected == why).sum()) for why in REJECT_REASONS if (rejected == why).any()}
    has_rows = not clean.empty
    return {
        "rows_read": int(n_rows),
        "rows_accepted": int(len(clean)),
        "rows_rejected": int(len(rejected)),
        "rejected_by_reason": by_reason,
        "customers": int(clean["customer_id"].nunique()) if has_rows else 0,
        "returns": int(clean["is_return"].sum()) if has_rows else 0,
        "first_timestamp": clean["timestamp"].min().isoformat() if has_rows else None,
        "last_timestamp": clean["timestamp"].max().isoformat() if has_rows else None,
    }
