"""The validated transaction frame of small /v1/score requests whose rows need no repair, without pandas' passes.

`features.validate_transactions` turns any export into the contract: it parses text, repairs ids
and texts, derives amounts and rejects what it cannot use, at a fixed cost of about 2 ms of pandas
calls however few the rows. Rows posted to the API were already typed by pydantic, and most need
none of that: then `clean_contract_frame` builds the very frame `validate_transactions` would
return, from the typed rows directly. Whenever a row would need repairing or rejecting -- a zero
amount, two rows of a customer at the same instant, a text with spaces around it, a blank or an
id-like `123.0`, an amount that is not finite -- or the request is large, it returns None and the
caller takes the general path, so every refusal and repair still has one definition.
tests/serving/test_clean_rows.py checks the two frames are equal, column for column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.schema import CONTRACT_FIELDS, NUMERIC_FIELDS, TEXT_FIELDS
from features.validate import numeric_field, signed_amounts
from serving.request_frame import PreparedRequest, row_ids

MAX_ROWS = 5_000
"""Larger requests take the general path: the saving is a fixed ~2 ms, which matters for small requests
(measured: 50 rows 0.3 ms here against 1.6 ms, 5,000 rows 9.8 ms against 12.0 ms)."""


def _clean_text(value: str | None) -> bool:
    """True when the contract keeps the text as it is (missing, or no spaces around, not blank, no `.`)."""
    return value is None or (value != "" and "." not in value and value == value.strip())


def clean_contract_frame(
    requests: Sequence[PreparedRequest], fields: Sequence[str], keep_duplicates: bool
) -> pd.DataFrame | None:
    """`validate_transactions(raw_frame(requests, fields)).transactions` when no row needs repair, else None."""
    if sum(request.n_rows for request in requests) > MAX_ROWS:
        return None
    rows = [tx for request in requests for customer in request.body.customers for tx in customer.transactions]
    ids = row_ids(requests)
    stamps = np.array([tx.timestamp for tx in rows], dtype="datetime64[ns]")
    amount = np.array(
        [tx.amount if tx.amount is not None else _product(tx.quantity, tx.unit_price) for tx in rows], dtype=float
    )
    flagged = np.array([tx.is_return is True for tx in rows], dtype=bool)
    if not np.isfinite(amount).all() or ((amount == 0) & ~flagged).any():
        return None  # bad_amount or zero_amount: the general path says which row
    texts = {name: [getattr(tx, name) for tx in rows] for name in fields if name in TEXT_FIELDS}
    if not all(_clean_text(value) for values in texts.values() for value in values):
        return None

    # Stable sort by (customer, timestamp), as the general path orders its rows.
    stamp_ns = stamps.view(np.int64)
    order = np.array(sorted(range(len(rows)), key=lambda i: (ids[i], stamp_ns[i])), dtype=np.int64)
    sorted_ids = [ids[i] for i in order]
    sorted_ns = stamp_ns[order]
    if not keep_duplicates:
        same_id = np.array([a == b for a, b in zip(sorted_ids[1:], sorted_ids[:-1], strict=True)], dtype=bool)
        if (same_id & (sorted_ns[1:] == sorted_ns[:-1])).any():
            return None  # possibly exact copies: the general path compares every column

    is_return, signed = signed_amounts(amount, flagged)
    data: dict[str, object] = {
        "customer_id": pd.array(sorted_ids, dtype="str"),
        "timestamp": stamps[order],
        "amount": signed[order],
        "is_return": is_return[order],
    }
    for name in CONTRACT_FIELDS:
        if name in data or name not in fields:
            continue
        if name in NUMERIC_FIELDS:
            data[name] = numeric_field(name, np.array([getattr(tx, name) for tx in rows], dtype=float)[order])
        elif name in TEXT_FIELDS:
            data[name] = pd.array([texts[name][i] for i in order], dtype="str")
        elif name == "promo":
            data[name] = np.array([tx.promo is True for tx in rows], dtype=bool)[order]
    return pd.DataFrame(data)


def _product(quantity: float | None, unit_price: float | None) -> float:
    """quantity x unit_price as the contract derives a missing amount (NaN when either is missing)."""
    if quantity is None or unit_price is None:
        return float("nan")
    return float(np.float64(quantity) * np.float64(unit_price))
