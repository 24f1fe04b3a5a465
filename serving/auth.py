"""The API key check: before any body is read, so a caller without a key learns nothing but 401."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

API_KEY_HEADER = "X-API-Key"
UNAUTHORIZED_DETAIL = f"missing or invalid {API_KEY_HEADER} header"
# Every route under these prefixes needs a key when keys are set; the rest (/healthz, /readyz,
# /metrics, /docs) are open.
PROTECTED_PREFIXES = ("/v1/", "/admin/")


def key_matches(given: str, keys: list[str]) -> bool:
    """True when `given` equals one of `keys`; every key is compared, each in constant time."""
    given_bytes = given.encode("utf-8")
    found = False
    for key in keys:
        found |= hmac.compare_digest(given_bytes, key.encode("utf-8"))
    return found


def unauthorized() -> JSONResponse:
    """The 401 answer, the same from the middleware and from the route dependency."""
    return JSONResponse(status_code=401, content={"detail": UNAUTHORIZED_DETAIL}, headers={"WWW-Authenticate": "ApiKey"})


class ApiKeyMiddleware:
    """Answers 401 to a protected path without a valid key before the body is read or parsed.

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    api_keys : callable
        ``api_keys(scope) -> list[str]``, read per request so settings overrides apply; empty: keys off.

    Notes
    -----
    It sits outside the body size limit and the JSON parser, so malformed JSON, undecodable bytes
    or a 6 MB body from a caller without a key all get the same 401 (issue 15 item 7). The routes'
    `require_api_key` dependency stays, so OpenAPI documents the header; it re-checks in microseconds.
    """

    def __init__(self, app: ASGIApp, api_keys: Callable[[Scope], list[str]]):
        self.app = app
        self.api_keys = api_keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse an unauthenticated request to a protected path, else pass it on untouched."""
        if scope["type"] == "http" and scope.get("path", "").startswith(PROTECTED_PREFIXES):
            keys = self.api_keys(scope)
            if keys:
                given = next((v for k, v in scope.get("headers", []) if k == API_KEY_HEADER.lower().encode()), None)
                if given is None or not key_matches(given.decode("latin-1"), keys):
                    await unauthorized()(scope, receive, send)
                    return
        await self.app(scope, receive, send)
