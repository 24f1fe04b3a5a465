"""A fingerprint of the training data: rows, date range and a hash that ignores row and column order."""

from __future__ import annotations

import hashlib

import pandas as pd


def data_fingerprint(transactions: pd.DataFrame) -> dict[str, object]:
    """Rows, customers, first and last timestamp, and the sha256 of the canonical frame.

    Canonical: columns sorted by name, rows sorted by every column, index dropped; so the same
    transactions read from a reshuffled file give the same hash.
    """
    columns = sorted(transactions.columns)
    frame = transactions[columns]
    if len(frame):
        sort_by = [c for c in ("customer_id", "timestamp", "amount") if c in columns]
        sort_by += [c for c in columns if c not in sort_by]
        frame = frame.sort_values(sort_by, kind="stable", na_position="last").reset_index(drop=True)
    digest = hashlib.sha256()
    digest.update(repr([(c, str(frame[c].dtype)) for c in columns]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    timestamps = transactions["timestamp"] if "timestamp" in transactions else pd.Series(dtype="datetime64[ns]")
    return {
        "rows": len(transactions),
        "customers": int(transactions["customer_id"].nunique()) if "customer_id" in transactions else 0,
        "first_timestamp": timestamps.min().isoformat() if len(timestamps) else "",
        "last_timestamp": timestamps.max().isoformat() if len(timestamps) else "",
        "sha256": digest.hexdigest(),
    }
