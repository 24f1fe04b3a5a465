"""The documentation pages' Content-Security-Policy: the browser fetches nothing off this server."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The pages' assets come from fastapi-offline's package (serving/app.py), but ReDoc's bundle still
# asks cdn.redoc.ly for its "powered by" logo, and a browser behind restricted egress would wait on
# it. Only this server ('self') is allowed; the rest is what the pages build in the browser: Swagger
# UI's and ReDoc's inline start-up script and styles, SVG icons as data: URLs, and ReDoc's search
# worker, started from a blob: URL.
DOCS_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    )
)


class DocsPolicyMiddleware:
    """Adds `DOCS_POLICY` to every HTML answer (the /docs and /redoc pages); JSON answers pass as they are.

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Set the policy header on an HTML response's start message."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    headers["content-security-policy"] = DOCS_POLICY
            await send(message)

        await self.app(scope, receive, send_with_policy)
