"""GET /v1/model: which model is serving, how it was trained and how it scored on its holdout."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from serving.deps import ApiKeyDep, ModelDep, StoreDep
from serving.model_store import LoadedModel, ModelStore
from serving.routes.responses import NO_MODEL, UNAUTHORIZED
from serving.schemas import ModelInfo

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["model"], dependencies=[ApiKeyDep])


def _headline_metrics(metadata: Mapping[str, Any]) -> dict[str, float]:
    metrics = metadata.get("metrics") or {}
    return {str(key): float(value) for key, value in dict(metrics).items() if isinstance(value, int | float)}


def current_alias(model: LoadedModel, store: ModelStore) -> str | None:
    """The alias of the model URI if it points at the served version now, else None.

    The alias moves in the registry independently of this process (a promotion without reload
    or polling), so it is asked, not remembered; a registry that cannot be asked gives None. A
    store without a registry (an injected loader) has nothing to ask and reports the URI's alias.
    """
    alias = model.uri.rsplit("@", 1)[1] if "@" in model.uri else None
    if alias is None or store.version_resolver is None:
        return alias
    try:
        points_at = store.version_resolver(model.uri)
    except Exception as exc:  # the registry is down or the alias was deleted: claim nothing
        logger.warning("cannot resolve %s in the registry: %s", model.uri, exc)
        return None
    return alias if points_at is not None and str(points_at) == model.version else None


def uplift_info(model: LoadedModel) -> dict[str, dict[str, Any]]:
    """Uplift per stage and tier with its source, and which learner the planner uses (`learner`)."""
    policy = getattr(model.scorer, "policy", None)
    if policy is None:
        return {}
    learner = model.metadata.get("uplift_learner") or {"chosen": "segment_table", "reason": "no per-customer model trained"}
    return {**policy.uplift_sources(), "learner": dict(learner)}


def model_info(model: LoadedModel, alias: str | None) -> ModelInfo:
    """The description of a loaded model that /v1/model returns."""
    metadata = model.metadata
    trained_at = metadata.get("trained_at")
    return ModelInfo(
        name=model.name,
        version=model.version,
        alias=alias,
        uri=model.uri,
        trained_at=str(trained_at) if trained_at is not None else None,
        data_fingerprint=metadata.get("data_fingerprint"),
        metrics=_headline_metrics(metadata),
        uplift=uplift_info(model),
        loaded_at=model.loaded_at,
    )


@router.get("/model", response_model=ModelInfo, responses={**UNAUTHORIZED, **NO_MODEL}, summary="The served model")
async def get_model_info(model: ModelDep, store: StoreDep) -> ModelInfo:
    """Name, version, alias (only while it still points at this version), training time, fingerprint, metrics."""
    alias = await run_in_threadpool(current_alias, model, store)
    return model_info(model, alias)
