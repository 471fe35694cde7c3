"""Request body limits, enforced while the body streams in.

A declared `Content-Length` over the route's limit is refused before a byte of the body
is read; a body that grows past it (chunked, or longer than declared) is refused the
moment it does, and the rest is never read. Either way the answer is 413 (problem
details) and the connection closes with the body unread.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ztsim.api.problems import problem_response
from ztsim.api.routes_dns import MAX_LIST_TEXT
from ztsim.dns.serve.doh import MAX_MESSAGE

# JSON request bodies of the API: generous for any object it takes.
JSON_BODY_LIMIT = 1024 * 1024
# The stock import route's file (CSV); the route may check its own, lower limit too.
STOCK_IMPORT_BODY_LIMIT = 64 * 1024 * 1024
# An uploaded DNS list travels as a JSON string: room for its escaped newlines and quotes.
DNS_LIST_BODY_LIMIT = 2 * MAX_LIST_TEXT
# An MDM connector's page of posture reports (up to 1,000 Intune managedDevice records,
# each a few KB of JSON).
POSTURE_BODY_LIMIT = 8 * 1024 * 1024
# RFC 8484 §6: a DoH POST body is one DNS message, at most 65,535 octets (RFC 1035 §4.2.2).
DOH_BODY_LIMIT = MAX_MESSAGE


@dataclass(frozen=True)
class BodyLimits:
    json: int = JSON_BODY_LIMIT
    stock_import: int = STOCK_IMPORT_BODY_LIMIT
    dns_list: int = DNS_LIST_BODY_LIMIT
    doh: int = DOH_BODY_LIMIT
    posture: int = POSTURE_BODY_LIMIT

    def for_path(self, path: str) -> int:
        if path == "/dns-query" or path.startswith("/dns-query/"):
            return self.doh
        if path == "/api/v1/stock-imports":
            return self.stock_import
        if path == "/api/v1/dns/lists" or path.startswith("/api/v1/dns/lists/"):
            return self.dns_list  # a list created (POST) or replaced (PUT .../{id})
        if path == "/api/v1/posture":
            return self.posture
        return self.json


class BodyTooLarge(HTTPException):
    """Raised from `receive` inside the app: FastAPI passes HTTP exceptions through its
    body parsing untouched, and the problem handler answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} octets")


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we see it
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await problem_response(413, BodyTooLarge(limit).detail)(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge as exc:
            # Only when the app let it through (a route reading its body outside FastAPI).
            if started:
                raise
            await problem_response(413, exc.detail)(scope, receive, send)
