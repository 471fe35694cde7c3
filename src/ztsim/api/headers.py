"""Headers every response carries, whichever route or error produced it.

`X-Content-Type-Options: nosniff` everywhere. `Cache-Control: no-store` on every response
that does not set its own: API answers are per-caller and several carry a secret once
(tokens, eSIM activation codes, DoH device tokens, UDM vectors), so none may be kept
by a cache. DoH answers set their own freshness (RFC 8484 §5.1) and keep it.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def secured(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A response's headers with the ones every response carries (on the raw list:
    building MutableHeaders cost more than the rest of this layer)."""
    kept = [(name, value) for name, value in headers if name.lower() != b"x-content-type-options"]
    kept.append((b"x-content-type-options", b"nosniff"))
    if not any(name.lower() == b"cache-control" for name, _ in kept):
        kept.append((b"cache-control", b"no-store"))
    return kept


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": secured(message.get("headers", ()))}
            await send(message)

        await self.app(scope, receive, send_with_headers)
