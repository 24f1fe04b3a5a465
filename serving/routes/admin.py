"""POST /admin/reload: pick up a new champion now (the polling loop does the same on a timer)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from serving.deps import ApiKeyDep, StoreDep
from serving.routes.responses import UNAUTHORIZED
from serving.schemas import ReloadResponse

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[ApiKeyDep])


@router.post(
    "/reload",
    response_model=ReloadResponse,
    responses={
        **UNAUTHORIZED,
        503: {"model": ReloadResponse, "description": "Loading failed; the previous model keeps serving."},
    },
    summary="Reload the model from the registry",
)
async def reload_model(
    store: StoreDep,
    force: Annotated[bool, Query(description="Load even when the registry still points at the served version.")] = False,
) -> JSONResponse:
    """Load the configured model URI and swap it in; on failure keep serving the previous model."""
    outcome = await run_in_threadpool(store.reload, force)
    body = ReloadResponse(
        status=outcome.status,
        model_version=outcome.model.version if outcome.model else None,
        error=outcome.error,
    )
    return JSONResponse(status_code=503 if outcome.status == "failed" else 200, content=body.model_dump(mode="json"))
