"""POST /v1/score: score customers from their transactions, exactly as the batch job would."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter

from models.prediction import as_of_timestamp
from serving.deps import ApiKeyDep, BatcherDep, MetricsDep, ModelDep, ScoresFileDep, SettingsDep
from serving.errors import LimitExceeded
from serving.json_rows import score_rows
from serving.routes.responses import NO_MODEL, TOO_LARGE, UNAUTHORIZED
from serving.schemas import ModelRef, ScoreRequest, ScoreResponse
from serving.score_request import prepare_request

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


@router.post(
    "/score",
    response_model=ScoreResponse,
    responses={**UNAUTHORIZED, **TOO_LARGE, **NO_MODEL},
    summary="Score customers from their transactions",
)
async def score(
    body: ScoreRequest,
    model: ModelDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    batcher: BatcherDep,
    scores_file: ScoresFileDep,
) -> Any:
    """Scores per customer (the batch file's row, field for field), in request order, and rejected rows.

    Rows the data contract rejects (a duplicate, a zero amount, ...) are listed with their reason in
    `rejects`, as the batch job's rejects file lists them, and the other customers are scored; a
    customer with no purchase on or before `as_of` is listed with reason `no_purchase_by_as_of`. The
    answer is 422 only when no customer can be scored. Tiers are placed against the tier boundaries
    the latest batch of this model saved (`PATRON_SCORES_PATH`), else the model's training cut-points,
    so the API and the batch agree for the same data.
    """
    check_limits(body, settings.max_customers_per_request, settings.max_transactions_per_customer)
    request = prepare_request(body, getattr(model.scorer, "required_columns", ()))
    boundaries = scores_file.tier_boundaries(settings.scores_path, model.version)  # None: the model's own
    answer = await batcher.score(model, request, as_of_timestamp(body.as_of), settings.keep_duplicates, boundaries)
    metrics.scored.labels(model.version).inc(len(answer.scores))
    return {
        "as_of": body.as_of,
        "model": ModelRef(name=model.name, version=model.version),
        "scores": score_rows(answer.scores),
        "rejects": answer.rejects,
    }
