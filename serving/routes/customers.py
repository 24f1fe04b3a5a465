"""GET /v1/customers/{customer_id}: the latest batch score of one customer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from serving.deps import ApiKeyDep, ScoresFileDep, SettingsDep
from serving.json_rows import score_rows
from serving.routes.responses import UNAUTHORIZED
from serving.schemas import CustomerScore, ErrorResponse

router = APIRouter(prefix="/v1/customers", tags=["customers"], dependencies=[ApiKeyDep])


@router.get(
    "/{customer_id}",
    response_model=CustomerScore,
    responses={
        **UNAUTHORIZED,
        404: {"model": ErrorResponse, "description": "The batch scores file has no such customer."},
        503: {"model": ErrorResponse, "description": "No batch scores file is configured or readable."},
    },
    summary="Latest batch score of a customer",
)
def get_customer(
    customer_id: Annotated[str, Path(min_length=1, max_length=256)],
    settings: SettingsDep,
    scores: ScoresFileDep,
) -> Any:
    """The customer's row of the batch scores file (settings `scores_path`)."""
    found = scores.select(settings.scores_path, [customer_id])
    if found.empty:
        raise HTTPException(
            status_code=404,
            detail=f"customer {customer_id!r} is not in the batch scores file (as of its last run); "
            "POST /v1/score scores a customer from transactions",
        )
    return score_rows(found)[0]
