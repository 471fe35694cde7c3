"""The Content-Security-Policy every response carries: the browser runs only our own
scripts and styles, loads nothing from another host, and frames nothing.

Set on every response of the app (pages, static files, API answers, errors), not only
the pages: a JSON answer opened in a browser tab is a document too. A route that sets
its own policy keeps it. `img-src` allows `data:` because Swagger UI's stylesheet draws
its icons as data URIs; no script or style may come inline (CSP Level 3, W3C, §6).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


class CspMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = POLICY
                # The session cookie and page paths are no business of other sites.
                if "referrer-policy" not in headers:
                    headers["Referrer-Policy"] = "no-referrer"
            await send(message)

        await self.app(scope, receive, send_with_policy)
