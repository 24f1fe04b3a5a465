"""Liveness, readiness and Prometheus metrics (open: no API key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response, Security
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from serving.auth import key_matches
from serving.deps import MetricsDep, SettingsDep, api_key_header
from serving.schemas import Health, Readiness

HIDDEN_ERROR = "hidden: send X-API-Key to see the last load error"

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="The process is up")
def healthz() -> Health:
    """Liveness: answers while the process runs, with or without a model."""
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        503: {"model": Readiness, "description": "No model is loaded; `last_error` says why (to callers with a key)."}
    },
    summary="A model is loaded",
)
async def readyz(
    request: Request, settings: SettingsDep, api_key: Annotated[str | None, Security(api_key_header)] = None
) -> Response:
    """Readiness: 200 once a model serves requests, else 503; the last load failure's text needs the API key.

    The probe itself stays open (load balancers send no key); a load error can name paths, hosts
    and registry details, so when `PATRON_API_KEYS` is set only a caller with a key reads it.
    """
    store = getattr(request.app.state, "model_store", None)
    model = store.current if store is not None else None
    last_error = store.last_error if store is not None else "the app has not started"
    trusted = not settings.api_keys or (api_key is not None and key_matches(api_key, settings.api_keys))
    if last_error is not None and not trusted:
        last_error = HIDDEN_ERROR
    body = Readiness(
        status="ready" if model is not None else "not_ready",
        model_name=model.name if model else None,
        model_version=model.version if model else None,
        loaded_at=model.loaded_at if model else None,
        last_error=last_error,
        last_error_at=store.last_error_at if store is not None else None,
    )
    return JSONResponse(status_code=200 if model is not None else 503, content=body.model_dump(mode="json"))


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."}},
)
def metrics(metrics: MetricsDep) -> Response:
    """Request counts, latency histograms and the served model version, in Prometheus' text format.

    With several workers, whichever answers sums every worker's counts and lists each one's model.
    """
    return Response(content=metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
