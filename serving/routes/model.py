"""GET /v1/model: which model is serving, how it was trained and how it scored on its holdout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter

from serving.deps import ApiKeyDep, ModelDep
from serving.model_store import LoadedModel
from serving.routes.responses import NO_MODEL, UNAUTHORIZED
from serving.schemas import ModelInfo

router = APIRouter(prefix="/v1", tags=["model"], dependencies=[ApiKeyDep])


def _headline_metrics(metadata: Mapping[str, Any]) -> dict[str, float]:
    metrics = metadata.get("metrics") or metadata.get("headline_metrics") or {}
    return {str(key): float(value) for key, value in dict(metrics).items() if isinstance(value, int | float)}


def model_info(model: LoadedModel) -> ModelInfo:
    """The description of a loaded model that /v1/model returns."""
    metadata = model.metadata
    alias = metadata.get("alias") or (model.uri.rsplit("@", 1)[1] if "@" in model.uri else None)
    trained_at = metadata.get("trained_at")
    return ModelInfo(
        name=model.name,
        version=model.version,
        alias=str(alias) if alias else None,
        uri=model.uri,
        trained_at=str(trained_at) if trained_at is not None else None,
        data_fingerprint=metadata.get("data_fingerprint", metadata.get("fingerprint")),
        metrics=_headline_metrics(metadata),
        uplift=policy.uplift_sources() if (policy := getattr(model.scorer, "policy", None)) is not None else {},
        loaded_at=model.loaded_at,
    )


@router.get("/model", response_model=ModelInfo, responses={**UNAUTHORIZED, **NO_MODEL}, summary="The served model")
def get_model_info(model: ModelDep) -> ModelInfo:
    """Name, version, alias, training time, data fingerprint and headline holdout metrics."""
    return model_info(model)
