"""Turn a validated /v1/score body into a transaction frame, and contract failures into 422s."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from serving.schemas import ScoreRequest, TransactionIn

OPTIONAL_FIELDS = [name for name in TransactionIn.model_fields if name not in ("timestamp",)]


def transactions_from_request(request: ScoreRequest) -> pd.DataFrame:
    """The request's transactions as a contract frame (columns only for fields somebody sent)."""
    counts = np.array([len(customer.transactions) for customer in request.customers])
    rows = [tx for customer in request.customers for tx in customer.transactions]
    ids = np.array([customer.customer_id for customer in request.customers], dtype=object)
    data: dict[str, Any] = {
        "customer_id": np.repeat(ids, counts),
        "timestamp": pd.to_datetime([tx.timestamp for tx in rows]).as_unit("ns"),
    }
    for name in OPTIONAL_FIELDS:
        values = [getattr(tx, name) for tx in rows]
        if any(value is not None for value in values):
            data[name] = values
    return pd.DataFrame(data)


def row_location(row: int, counts: np.ndarray) -> tuple[int, int]:
    """(customer index, transaction index) of a flattened transaction row."""
    ends = np.cumsum(counts)
    customer = int(np.searchsorted(ends, row, side="right"))
    start = int(ends[customer - 1]) if customer else 0
    return customer, row - start


def field_error(loc: tuple[Any, ...], message: str, value: Any = None) -> dict[str, Any]:
    """One error entry in FastAPI's 422 format."""
    return {"type": "value_error", "loc": ("body", *loc), "msg": message, "input": value}
