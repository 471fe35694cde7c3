"""Authentication before the body: every request to the API (`/api/...`) and the UDM
(`/nudm-...`) shows a valid bearer token before any of its body is read.

A request without one is answered 401 with its body unread. Failed authentications
are counted per client address (`ratelimit`); a client over its budget gets 429 with
Retry-After and its token is not even checked. The checked principal travels in the
scope, so the route's dependencies (`deps`) do not look the token up again. The
presented token is never logged. DoH and everything else keep their own rules.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from ztsim.api.context import ApiContext
from ztsim.api.problems import (
    database_unavailable,
    log_unavailable,
    problem_response,
    unavailable_response,
)
from ztsim.api.ratelimit import FailureLimiter
from ztsim.identity import token_store
from ztsim.identity.roles import Principal

PRINCIPAL_KEY = "ztsim.principal"
PROTECTED_PREFIXES = ("/api/", "/nudm-")
log = logging.getLogger("ztsim.api.gate")


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


def _authenticate(ctx: ApiContext, token: str) -> Principal | None:
    # A read: no write lock on SQLite (ctx.tx would take it).
    with ctx.engine.connect() as conn:
        return token_store.authenticate(conn, token, ctx.clock())


class AuthGate:
    def __init__(
        self,
        app: ASGIApp,
        limiter: FailureLimiter | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        if token is None:
            await problem_response(401, "a bearer token is required")(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "-"
        if self.limiter is not None:
            wait = self.limiter.retry_after(client, self.clock())
            if wait:
                log.warning(
                    "too many failed authentications from %s; refusing for %ds", client, wait
                )
                response = problem_response(
                    429, "too many failed authentications", headers={"Retry-After": str(wait)}
                )
                await response(scope, receive, send)
                return
        ctx = scope["app"].state.ctx
        assert isinstance(ctx, ApiContext)
        try:
            principal = await run_in_threadpool(_authenticate, ctx, token)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            log_unavailable(exc)
            await unavailable_response()(scope, receive, send)
            return
        if principal is None:
            if self.limiter is not None:
                self.limiter.failed(client, self.clock())
            log.info("failed authentication from %s", client)
            response = problem_response(401, "the token is unknown, expired or revoked")
            await response(scope, receive, send)
            return
        scope[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)
