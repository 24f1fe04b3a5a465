"""API error answers: invalid requests and domain errors (422), limits (413), anything unexpected (500, logged)."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from core.errors import DataError, PatronError
from serving.limits import too_large

logger = logging.getLogger(__name__)


class LimitExceeded(PatronError):
    """A request is larger than a configured limit (answered 413, naming the setting)."""

    def __init__(self, limit: str, value: int, detail: str):
        super().__init__(detail)
        self.limit, self.value, self.detail = limit, value, detail


class ServiceUnavailable(PatronError):
    """A resource the request needs is not available on this server (answered 503)."""


async def _limit_exceeded(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LimitExceeded)
    return too_large(exc.limit, exc.value, exc.detail)


def json_safe(value: Any) -> Any:
    """`value` with non-finite floats as the JSON literals a body may carry ("NaN", "Infinity")."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, except that an offending NaN or Infinity is echoed as text: JSON has no such
    number, so echoing it as one fails while answering and turns a refused input into a 500."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(json_safe(exc.errors()))})


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": str(exc)})


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=503, content={"detail": str(exc)})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(status_code=500, content={"detail": "internal error; the server log has the details"})


def install_error_handlers(app: FastAPI) -> None:
    """Register the API's exception handlers on `app`."""
    from serving.scores_file import ScoresUnavailable

    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(LimitExceeded, _limit_exceeded)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(ScoresUnavailable, _unavailable)
    app.add_exception_handler(ServiceUnavailable, _unavailable)
    app.add_exception_handler(Exception, _unexpected)
