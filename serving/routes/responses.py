"""OpenAPI descriptions of the error answers routes share."""

from __future__ import annotations

from typing import Any

from serving.schemas import ErrorResponse

UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or invalid X-API-Key (when API keys are set)."}
}
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "A size limit was exceeded; `limit` names the setting."}
}
NO_MODEL: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "No model is loaded yet (see /readyz)."}
}
