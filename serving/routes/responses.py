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
BAD_REQUEST: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body cannot be read (e.g. bytes that are not UTF-8)."}
}
SERVER_ERROR: dict[int | str, dict[str, Any]] = {
    500: {"model": ErrorResponse, "description": "An unexpected failure; the server log has the details."}
}
_PROTECTED = ("/v1/", "/admin/")


def _response(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": entry["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }


def add_common_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """Document, on every operation of an OpenAPI `schema`, the statuses the app's layers can answer.

    Middleware and handlers answer these for any route, so each route cannot list them itself:
    401 on /v1 and /admin (the key check), 400 and 413 where a body is read, 500 everywhere.
    """
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            common = dict(SERVER_ERROR)
            if path.startswith(_PROTECTED):
                common.update(UNAUTHORIZED)
            if "requestBody" in operation:
                common.update({**BAD_REQUEST, **TOO_LARGE})
            for status, entry in common.items():
                responses.setdefault(str(status), _response(entry))
    return schema
