"""POST /v1/score: score customers from their transactions, exactly as the batch job would."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from serving.deps import ApiKeyDep, MetricsDep, ModelDep, SettingsDep
from serving.errors import LimitExceeded
from serving.records import score_rows
from serving.request_frame import field_error, row_location, transactions_from_request
from serving.routes.responses import NO_MODEL, TOO_LARGE, UNAUTHORIZED
from serving.schemas import ModelRef, ScoreRequest, ScoreResponse
from serving.scoring import as_of_timestamp, score_frame

router = APIRouter(prefix="/v1", tags=["scoring"], dependencies=[ApiKeyDep])


def check_limits(body: ScoreRequest, max_customers: int, max_transactions: int) -> None:
    """413 when the request holds more customers, or a customer more transactions, than allowed."""
    if len(body.customers) > max_customers:
        raise LimitExceeded(
            "max_customers_per_request",
            max_customers,
            f"{len(body.customers)} customers in one request; max_customers_per_request is {max_customers}",
        )
    counts = np.array([len(customer.transactions) for customer in body.customers])
    over = np.flatnonzero(counts > max_transactions)
    if len(over):
        first = int(over[0])
        raise LimitExceeded(
            "max_transactions_per_customer",
            max_transactions,
            f"customers[{first}] ({body.customers[first].customer_id!r}) has {counts[first]} transactions; "
            f"max_transactions_per_customer is {max_transactions}",
        )


def check_unique_ids(body: ScoreRequest) -> None:
    """422 naming the second occurrence of a repeated customer_id."""
    ids = pd.Series([customer.customer_id for customer in body.customers])
    repeated = np.flatnonzero(ids.duplicated().to_numpy())
    if len(repeated):
        errors = [
            field_error(("customers", int(i), "customer_id"), "customer_id appears more than once", ids[i])
            for i in repeated[:20]
        ]
        raise RequestValidationError(errors)


def validate_contract(body: ScoreRequest, keep_duplicates: bool) -> pd.DataFrame:
    """The request's transactions checked against the data contract; 422 naming each bad row."""
    from features import validate_transactions

    frame = transactions_from_request(body)
    result = validate_transactions(frame, keep_duplicates=keep_duplicates)
    if len(result.rejects):
        counts = np.array([len(customer.transactions) for customer in body.customers])
        errors = []
        for row, reason in zip(result.rejects.index[:20], result.rejects["reason"].astype(str)[:20], strict=True):
            customer, tx = row_location(int(row), counts)
            errors.append(field_error(("customers", customer, "transactions", tx), reason))
        raise RequestValidationError(errors)
    return result.transactions


def check_scored(body: ScoreRequest, scores: pd.DataFrame) -> None:
    """422 for customers with no purchase on or before as_of (the batch job has no row for them)."""
    ids = pd.Index([customer.customer_id for customer in body.customers])
    missing = np.flatnonzero(~ids.isin(scores["customer_id"]))
    if len(missing):
        errors = [
            field_error(
                ("customers", int(i), "transactions"),
                f"no purchase on or before as_of {body.as_of.isoformat()}: nothing to score",
            )
            for i in missing[:20]
        ]
        raise RequestValidationError(errors)


@router.post(
    "/score",
    response_model=ScoreResponse,
    responses={**UNAUTHORIZED, **TOO_LARGE, **NO_MODEL},
    summary="Score customers from their transactions",
)
def score(body: ScoreRequest, model: ModelDep, settings: SettingsDep, metrics: MetricsDep) -> Any:
    """Scores per customer (the batch file's row, field for field), in request order."""
    check_limits(body, settings.max_customers_per_request, settings.max_transactions_per_customer)
    check_unique_ids(body)
    transactions = validate_contract(body, settings.keep_duplicates)
    scores = score_frame(transactions, model.scorer, as_of_timestamp(body.as_of))
    check_scored(body, scores)
    order = pd.Index(scores["customer_id"]).get_indexer([customer.customer_id for customer in body.customers])
    metrics.scored.labels(model.version).inc(len(order))
    return {
        "as_of": body.as_of,
        "model": ModelRef(name=model.name, version=model.version),
        "scores": score_rows(scores.iloc[order]),
    }
