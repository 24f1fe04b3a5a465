"""Dependencies of the API's routes: settings, the served model, security, shared state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from patron.settings import Settings, get_settings
from serving.auth import API_KEY_HEADER, UNAUTHORIZED_DETAIL, key_matches
from serving.metrics import ServingMetrics
from serving.micro_batch import ScoreBatcher
from serving.model_store import LoadedModel, ModelStore
from serving.scores_file import ScoresFile

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="Required on /v1 and /admin when the server sets PATRON_API_KEYS.",
)


def resolve_settings(app: FastAPI) -> Settings:
    """The app's settings outside a route (lifespan, middleware), honouring dependency overrides."""
    return app.dependency_overrides.get(get_settings, get_settings)()


# The dependencies below are `async def` although they never await: FastAPI runs a plain `def`
# dependency in a worker thread, and those hops (one per dependency, ~7 per /v1/score) cost more
# than the work they wrap.


async def current_settings(request: Request) -> Settings:
    """The app's settings: `get_settings`, or what `app.dependency_overrides[get_settings]` gives."""
    return resolve_settings(request.app)


SettingsDep = Annotated[Settings, Depends(current_settings)]


async def require_api_key(
    settings: SettingsDep, api_key: Annotated[str | None, Security(api_key_header)] = None
) -> None:
    """Refuse with 401 unless API keys are off or X-API-Key holds one of them."""
    if not settings.api_keys:
        return
    if api_key is None or not key_matches(api_key, settings.api_keys):
        raise HTTPException(status_code=401, detail=UNAUTHORIZED_DETAIL, headers={"WWW-Authenticate": "ApiKey"})


async def get_model_store(request: Request) -> ModelStore:
    """The app's model store (created when the app starts)."""
    store = getattr(request.app.state, "model_store", None)
    if store is None:
        raise HTTPException(status_code=503, detail="the app has not started yet (no model store)")
    return store


async def get_metrics(request: Request) -> ServingMetrics:
    """The app's Prometheus metrics."""
    return request.app.state.metrics


async def get_scores_file(request: Request) -> ScoresFile:
    """The app's cache of the batch scores file."""
    return request.app.state.scores_file


async def get_batcher(request: Request) -> ScoreBatcher:
    """The app's /v1/score micro-batcher."""
    return request.app.state.batcher


StoreDep = Annotated[ModelStore, Depends(get_model_store)]
MetricsDep = Annotated[ServingMetrics, Depends(get_metrics)]
ScoresFileDep = Annotated[ScoresFile, Depends(get_scores_file)]
BatcherDep = Annotated[ScoreBatcher, Depends(get_batcher)]


async def get_model(store: StoreDep) -> LoadedModel:
    """The model serving this request (one reference for the whole request), or 503."""
    model = store.current
    if model is None:
        detail = "no model is loaded yet; see /readyz"
        if store.last_error:
            detail += f" (last load failure: {store.last_error})"
        raise HTTPException(status_code=503, detail=detail)
    return model


ModelDep = Annotated[LoadedModel, Depends(get_model)]
ApiKeyDep = Depends(require_api_key)
