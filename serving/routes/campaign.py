"""POST /v1/campaign: choose whom to contact under a budget, from scores or from customer ids."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, HTTPException
from fastapi.exceptions import RequestValidationError

from core.errors import DataError
from core.scores import SCORE_COLUMNS
from serving.deps import ApiKeyDep, ModelDep, ScoresFileDep, SettingsDep
from serving.errors import LimitExceeded
from serving.json_rows import frame_records
from serving.routes.responses import NO_MODEL, TOO_LARGE, UNAUTHORIZED
from serving.schemas import CampaignRequest, CampaignResponse, ErrorResponse
from serving.score_request import field_error, refuse
from targeting.campaign import select_campaign
from targeting.policy import TargetingPolicy
from targeting.winback import NO_CHANNEL

router = APIRouter(prefix="/v1", tags=["campaign"], dependencies=[ApiKeyDep])


def decisions_from_request(body: CampaignRequest, scores_path: str | None, scores_file: Any) -> pd.DataFrame:
    """The score rows the campaign chooses from: given in the body, or looked up in the batch file."""
    if body.scores is not None:
        return pd.DataFrame([row.model_dump() for row in body.scores], columns=list(SCORE_COLUMNS))
    ids = list(dict.fromkeys(body.customer_ids or []))
    found = scores_file.select(scores_path, ids)
    known = set(found["customer_id"].astype(str))
    unknown = [cid for cid in ids if cid not in known]
    if unknown:
        shown = ", ".join(repr(cid) for cid in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise HTTPException(status_code=404, detail=f"not in the batch scores file: {shown}{more}")
    return found


def unknown_channel_errors(decisions: pd.DataFrame, policy: TargetingPolicy) -> list[dict[str, Any]]:
    """Errors naming score rows whose channel the policy cannot price."""
    known = [*policy.contact_costs, NO_CHANNEL]
    bad = np.flatnonzero(~decisions["channel"].isin(known).to_numpy())
    return [
        field_error(("scores", int(i), "channel"), f"unknown channel; the model's channels are {known}")
        for i in bad
    ]


@router.post(
    "/campaign",
    response_model=CampaignResponse,
    responses={
        **UNAUTHORIZED,
        **TOO_LARGE,
        **NO_MODEL,
        404: {"model": ErrorResponse, "description": "Some customer_ids are not in the batch scores file."},
        503: {"model": ErrorResponse, "description": "No batch scores file is configured or readable."},
    },
    summary="Select a campaign under a budget",
)
def campaign(body: CampaignRequest, model: ModelDep, settings: SettingsDep, scores_file: ScoresFileDep) -> Any:
    """The customers to contact (action, channel, incentive, expected profit), a summary and exclusions."""
    size = len(body.scores if body.scores is not None else body.customer_ids or [])
    if size > settings.max_customers_per_request:
        raise LimitExceeded(
            "max_customers_per_request",
            settings.max_customers_per_request,
            f"{size} customers in one request; max_customers_per_request is {settings.max_customers_per_request}",
        )
    decisions = decisions_from_request(body, settings.scores_path, scores_file)
    # The served model's targeting policy prices the contacts, as the batch job's campaign does.
    policy = getattr(model.scorer, "policy", None) or TargetingPolicy.from_settings(settings)
    if body.scores is not None:
        refuse(unknown_channel_errors(decisions, policy))
    try:
        result = select_campaign(decisions, body.budget, policy=policy, campaign_id=body.campaign_id, control_share=body.control_share)
    except (DataError, ValueError) as exc:  # score rows that targeting cannot use
        raise RequestValidationError([field_error(("scores",), str(exc))]) from None
    return {
        "budget": body.budget,
        "campaign_id": result.campaign_id,
        "selected": frame_records(result.selected),
        "summary": frame_records(result.summary),
        "excluded": frame_records(result.excluded),
    }
