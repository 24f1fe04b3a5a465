"""Turn a validated /v1/score body into a contract frame; every reason to refuse it is a 422 naming a field."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from fastapi.exceptions import RequestValidationError

from serving.schemas import ScoreRequest, TransactionIn

TRANSACTION_FIELDS = list(TransactionIn.model_fields)
MAX_ERRORS = 20  # a 422 names the first few offending fields, not thousands

# Features that exist only when the transactions carry an optional contract field (features.behaviour).
FEATURE_SOURCES = {
    "discount_share": "discount",
    "promo_share": "promo",
    "n_categories": "category",
    "top_category_share": "category",
    "margin_rate": "cost",
}


def field_error(loc: tuple[Any, ...], message: str, value: Any = None) -> dict[str, Any]:
    """One error entry in FastAPI's 422 format."""
    return {"type": "value_error", "loc": ("body", *loc), "msg": message, "input": value}


def refuse(errors: Iterable[dict[str, Any]]) -> None:
    """Raise a 422 with (at most MAX_ERRORS of) `errors`, if there are any."""
    listed = list(errors)[:MAX_ERRORS]
    if listed:
        raise RequestValidationError(listed)


def normalised_ids(body: ScoreRequest) -> pd.Series:
    """The request's customer ids as the data contract reads them (`17850.0` and ` 17850` are `17850`)."""
    from features.validate import _customer_ids  # the contract's one definition of an id

    return _customer_ids(pd.Series([c.customer_id for c in body.customers], dtype=object)).astype(str)


def transactions_from_request(body: ScoreRequest, extra_rows: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """The request's transactions as a raw frame: a column for every field some transaction sent."""
    counts = np.array([len(customer.transactions) for customer in body.customers])
    rows = [tx for customer in body.customers for tx in customer.transactions]  # bounded by the limits
    ids = np.array([customer.customer_id for customer in body.customers], dtype=object)
    data: dict[str, list[Any]] = {"customer_id": np.repeat(ids, counts).tolist()}
    for name in TRANSACTION_FIELDS:
        values = [getattr(tx, name) for tx in rows]
        if name == "timestamp" or any(value is not None for value in values):
            data[name] = values
    for extra in extra_rows or []:
        for name, values in data.items():
            values.append(extra.get(name))
    frame = pd.DataFrame(data)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).astype("datetime64[ns]")
    return frame


def duplicate_id_errors(ids: pd.Series) -> list[dict[str, Any]]:
    """Errors naming each repeat of a customer id (after the contract's normalisation)."""
    repeated = np.flatnonzero(ids.duplicated().to_numpy())
    return [field_error(("customers", int(i), "customer_id"), "customer_id appears more than once", ids[i]) for i in repeated]


def contract_transactions(body: ScoreRequest, keep_duplicates: bool) -> pd.DataFrame:
    """The request validated by the data contract, exactly as the batch job validates a file."""
    from features import validate_transactions

    # validate_transactions refuses a frame in which every row is rejected, without saying which
    # rows; one valid row of an id no client sends keeps every row's own reason in `rejects`.
    sentinel = f"sentinel-{uuid.uuid4().hex}"
    sentinel_row = {"customer_id": sentinel, "timestamp": pd.Timestamp(body.as_of), "amount": 1.0}
    frame = transactions_from_request(body, extra_rows=[sentinel_row])
    result = validate_transactions(frame, keep_duplicates=keep_duplicates)
    counts = np.array([len(customer.transactions) for customer in body.customers])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rows = result.rejects["row"].to_numpy(dtype=np.int64)
    customer = np.searchsorted(starts, rows, side="right") - 1
    refuse(
        field_error(("customers", int(c), "transactions", int(r - starts[c])), f"rejected by the data contract: {why}")
        for c, r, why in zip(customer, rows, result.rejects["reason"].astype(str), strict=True)
    )
    transactions = result.transactions
    return transactions[transactions["customer_id"] != sentinel].reset_index(drop=True)


def unscorable_errors(body: ScoreRequest, ids: pd.Series, transactions: pd.DataFrame) -> list[dict[str, Any]]:
    """Errors for customers with no purchase on or before as_of (the batch file has no row for them)."""
    as_of = pd.Timestamp(body.as_of)
    bought = (transactions["timestamp"].dt.normalize() <= as_of) & ~transactions["is_return"]
    has_purchase = ids.isin(transactions.loc[bought, "customer_id"]).to_numpy()
    return [
        field_error(("customers", int(i), "transactions"), f"no purchase on or before as_of {as_of.date()}: nothing to score")
        for i in np.flatnonzero(~has_purchase)
    ]


def missing_field_errors(transactions: pd.DataFrame, required_features: Iterable[str]) -> list[dict[str, Any]]:
    """Errors when the model uses a feature built from an optional field no transaction carries."""
    needed: dict[str, list[str]] = {}
    for feature in required_features:
        source = FEATURE_SOURCES.get(feature)
        if source is not None and source not in transactions.columns:
            needed.setdefault(source, []).append(feature)
    return [
        field_error(
            ("customers",),
            f"the model uses {', '.join(features)}, built from the transaction field '{source}': send it",
        )
        for source, features in needed.items()
    ]


def prepare_request(body: ScoreRequest, keep_duplicates: bool, required_features: Iterable[str]) -> tuple[pd.DataFrame, pd.Series]:
    """(validated transactions, normalised ids in request order), or a 422 naming what is wrong."""
    ids = normalised_ids(body)
    refuse(duplicate_id_errors(ids))
    transactions = contract_transactions(body, keep_duplicates)
    refuse(unscorable_errors(body, ids, transactions))
    refuse(missing_field_errors(transactions, required_features))
    return transactions, ids
