"""Headers every response carries, whichever route or error produced it.

`X-Content-Type-Options: nosniff` everywhere. `Cache-Control: no-store` on every response
that does not set its own: API answers are per-caller and several carry a secret once
(tokens, eSIM activation codes, DoH device tokens, UDM vectors), so none may be kept
by a cache. DoH answers set their own freshness (RFC 8484 §5.1) and keep it.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
