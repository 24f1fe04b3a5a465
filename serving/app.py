"""The prediction API: `create_app()` builds it; `uvicorn serving.app:app` or `patron serve` runs it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.types import Scope

from patron.settings import Settings, get_settings
from serving.auth import ApiKeyMiddleware
from serving.deps import resolve_settings
from serving.docs_policy import DocsPolicyMiddleware
from serving.errors import install_error_handlers
from serving.limits import BodySizeLimitMiddleware
from serving.metrics import MULTIPROC_DIR_ENV, MetricsMiddleware, ServingMetrics
from serving.micro_batch import ScoreBatcher
from serving.model_store import (
    ModelStore,
    ReloadOutcome,
    ScorerLoader,
    VersionResolver,
    mlflow_scorer_loader,
    registry_version_resolver,
)
from serving.routes import admin, campaign, customers, health, model, score
from serving.routes.responses import add_common_responses
from serving.scores_file import ScoresFile

logger = logging.getLogger(__name__)

DESCRIPTION = """Customer value and churn scores from the champion model of the MLflow registry.

`/v1` and `/admin` need an `X-API-Key` header when the server sets `PATRON_API_KEYS`; without a
valid key the answer is 401 before the body is read. A body that cannot be decoded answers 400,
an oversized one 413 naming the limit, a malformed one 422 naming the field, and a missing model
503; 500 means a server fault (logged). `/healthz`, `/readyz`, `/metrics` and these docs are open."""


async def poll_for_new_model(store: ModelStore, interval_seconds: float) -> None:
    """Every `interval_seconds`, load the registry's champion if it moved to another version."""
    while True:
        await asyncio.sleep(interval_seconds)
        await asyncio.to_thread(store.reload, False)


def _store_for(app: FastAPI, settings: Settings) -> ModelStore:
    """The model store of `app`: the injected loader, else MLflow's registry at the tracking URI."""
    loader: ScorerLoader | None = app.state.scorer_loader
    resolver: VersionResolver | None = app.state.version_resolver
    if loader is None:
        tracking_uri = settings.resolved_tracking_uri()
        loader = mlflow_scorer_loader(tracking_uri)
        resolver = resolver or registry_version_resolver(tracking_uri)
    store = ModelStore(settings.model_uri, loader, resolver)
    metrics: ServingMetrics = app.state.metrics

    def record(outcome: ReloadOutcome) -> None:
        metrics.reloads.labels(outcome.status).inc()
        if outcome.model is not None:
            metrics.set_model(outcome.model.name, outcome.model.version)

    store.on_reload = record
    return store


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model before serving (a failure leaves /readyz at 503), poll for new champions."""
    settings = resolve_settings(app)
    store = _store_for(app, settings)
    app.state.model_store = store
    outcome = await asyncio.to_thread(store.reload)
    if outcome.status == "failed":
        logger.error("starting without a model: %s; /readyz answers 503 until a load succeeds", outcome.error)
    # What is loaded by now (libraries, the model) stays for good: keep it out of the garbage
    # collector's full passes, which otherwise walk all of it and add milliseconds to the requests
    # they interrupt (benchmarks/RESULTS.md, API: p99 at concurrency 1 19.2 / 20.4 ms without, 16.9 /
    # 16.3 ms with; at concurrency 16 230-260 ms -> 53-69 ms). A model swapped out later is still
    # freed by reference counting.
    gc.collect()
    gc.freeze()
    batcher: ScoreBatcher = app.state.batcher
    batcher.max_customers = 2 * settings.max_customers_per_request
    batcher.coalesce_seconds = settings.score_coalesce_ms / 1000
    await batcher.start()
    poller = None
    if settings.reload_interval_seconds > 0:
        poller = asyncio.create_task(poll_for_new_model(store, settings.reload_interval_seconds))
    try:
        yield
    finally:
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        await batcher.stop()
        app.state.metrics.close()
        gc.unfreeze()


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("patron")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def create_app(
    settings: Settings | None = None,
    scorer_loader: ScorerLoader | None = None,
    version_resolver: VersionResolver | None = None,
) -> FastAPI:
    """Build the API. Nothing is loaded here: the model is loaded when the app starts.

    `settings` overrides `get_settings` (tests can also set `app.dependency_overrides`);
    `scorer_loader(uri)` replaces loading from the MLflow registry.
    """
    # FastAPIOffline serves Swagger UI and ReDoc from its installed package, not a CDN: /docs works
    # on servers without internet access; DocsPolicyMiddleware stops what the bundles still fetch.
    app = FastAPIOffline(title="Patron", version=_package_version(), description=DESCRIPTION, lifespan=lifespan)
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    app.state.scorer_loader = scorer_loader
    app.state.version_resolver = version_resolver
    app.state.model_store = None
    # `patron serve --workers N` gives its workers one metrics folder (serving.metrics.shared_metrics_dir).
    app.state.metrics = ServingMetrics(multiprocess_dir=os.environ.get(MULTIPROC_DIR_ENV) or None)
    app.state.scores_file = ScoresFile()
    app.state.batcher = ScoreBatcher(on_pass=app.state.metrics.observe_pass)
    for router in (score.router, customers.router, campaign.router, model.router, admin.router, health.router):
        app.include_router(router)
    install_error_handlers(app)

    _document_statuses(app)

    def max_body_bytes(scope: Scope) -> int:
        return resolve_settings(scope["app"]).max_body_bytes

    def api_keys(scope: Scope) -> list[str]:
        return resolve_settings(scope["app"]).api_keys

    # Added last = outermost: metrics see every answer, including the key check's 401s and the body
    # limit's 413s; the key is checked before the body is read.
    app.add_middleware(DocsPolicyMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(ApiKeyMiddleware, api_keys=api_keys)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app


def _document_statuses(app: FastAPI) -> None:
    """Make `app.openapi()` list the statuses every layer can answer (serving/routes/responses.py)."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = add_common_responses(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


app = create_app()
