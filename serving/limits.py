"""Request body size limit: checked on Content-Length and again on the bytes actually streamed."""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large(limit: str, value: int, detail: str) -> JSONResponse:
    """The 413 answer, naming the setting that refused the request."""
    return JSONResponse(status_code=413, content={"detail": detail, "limit": limit, "limit_value": value})


class BodySizeLimitMiddleware:
    """Answers 413 before the app sees a body larger than the limit.

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    max_bytes : callable
        ``max_bytes(scope) -> int``, read per request so settings overrides apply.

    Notes
    -----
    A declared Content-Length over the limit is refused without reading the body. Otherwise
    the body is read up to the limit (chunked uploads declare no length, and a client may
    send more than it declared) and replayed to the app, so the app never buffers more than
    the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: Callable[[Scope], int]):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse or replay the request body."""
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes(scope)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(limit, scope, receive, send)
            return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            total += len(body)
            if total > limit:
                await self._refuse(limit, scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        response = too_large(
            "max_body_bytes", limit, f"request body is larger than max_body_bytes={limit} bytes"
        )
        await response(scope, receive, send)
