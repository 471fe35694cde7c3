"""Authentication before the body: every request to the API (`/api/...`) and the UDM
(`/nudm-...`) shows a valid bearer token before any of its body is read.

A request without one is answered 401 with its body unread. Failed authentications
are counted per client address (`ratelimit`); a client over its budget gets 429 with
Retry-After and its token is not even checked. The checked principal travels in the
scope, so the route's dependencies (`deps`) do not look the token up again; a token
found valid is remembered for a second (`principals`). The presented token is never
logged. DoH and everything else keep their own rules.

The CAMARA APIs (`/sim-swap/`, `/device-swap/`, `/sim-swap-subscriptions/`, but not the
spec documents served there) are gated the same way with their OAuth access tokens, and
answered in CAMARA's error shape; their grant travels in the scope too. Failed client
authentications at the OAuth token endpoint count against the same per-client budget.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from functools import partial

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ztsim.api.camara import auth as camara_auth
from ztsim.api.camara.errors import (
    TOO_MANY_REQUESTS,
    CamaraError,
    correlator_in,
    error_response,
    unauthenticated,
)
from ztsim.api.camara.routes_oauth import TOKEN_PATH
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
from ztsim.identity.tokens import hash_token
from ztsim.risk.clients import Grant
from ztsim.risk.specs import SERVED_AT
from ztsim.web.access import LOGIN_PATH

PRINCIPAL_KEY = "ztsim.principal"
PROTECTED_PREFIXES = ("/api/", "/nudm-")
CAMARA_PREFIXES = ("/sim-swap/", "/device-swap/", "/sim-swap-subscriptions/")
log = logging.getLogger("ztsim.api.gate")


def bearer_token(scope: Scope) -> str | None:
    return bearer_token_in(scope["headers"])


def bearer_token_in(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


def _authenticate(ctx: ApiContext, token: str) -> Principal | None:
    generation = ctx.principals.generation
    # A read: no write lock on SQLite (ctx.tx would take it).
    with ctx.engine.connect() as conn:
        found = token_store.authenticate_until(conn, token, ctx.clock())
    if found is None:
        return None
    principal, expires_at = found
    ctx.principals.put(hash_token(token), principal, expires_at, generation)
    return principal


def remembered(ctx: ApiContext, token: str) -> Principal | None:
    """The token's principal if this process saw it valid lately; no database read."""
    return ctx.principals.get(hash_token(token), ctx.clock())


def _camara(scope: Scope) -> bool:
    path = scope["path"]
    return path.startswith(CAMARA_PREFIXES) and not (
        path in SERVED_AT and scope["method"] in ("GET", "HEAD")
    )


def _refusal(scope: Scope, status: int, detail: str, headers: dict[str, str]) -> ASGIApp:
    if not _camara(scope):
        return problem_response(status, detail, headers=headers)
    if status == 401:
        return error_response(unauthenticated(), correlator_in(scope))
    error = CamaraError(status, TOO_MANY_REQUESTS, "Rejected due to request rate limit overpassed.")
    return error_response(error, correlator_in(scope), headers)


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
        self._lookups: dict[bytes, asyncio.Task[Principal | None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == TOKEN_PATH:
            await self._token_endpoint(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"] == LOGIN_PATH and scope["method"] == "POST":
            await self._sign_in(scope, receive, send)
            return
        if scope["type"] != "http" or not (
            scope["path"].startswith(PROTECTED_PREFIXES) or _camara(scope)
        ):
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        if token is None:
            await _refusal(scope, 401, "a bearer token is required", {})(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "-"
        wait = self._retry_after(client)
        if wait:
            response = _refusal(
                scope, 429, "too many failed authentications", {"Retry-After": str(wait)}
            )
            await response(scope, receive, send)
            return
        ctx = scope["app"].state.ctx
        assert isinstance(ctx, ApiContext)
        camara = _camara(scope)
        try:
            principal: Principal | Grant | None = None if camara else remembered(ctx, token)
            if principal is None:
                principal = await (
                    run_in_threadpool(camara_auth.authenticate, ctx, token)
                    if camara
                    else self._lookup(ctx, token)
                )
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
            response = _refusal(scope, 401, "the token is unknown, expired or revoked", {})
            await response(scope, receive, send)
            return
        scope[camara_auth.GRANT_KEY if camara else PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)

    async def _lookup(self, ctx: ApiContext, token: str) -> Principal | None:
        """The token's principal from the database, one lookup per token at a time: the
        requests presenting it meanwhile share the answer (a client's many connections
        would otherwise each pay a lookup, in a worker thread, whenever its remembered
        principal lapses)."""
        key = hash_token(token)
        loop = asyncio.get_running_loop()
        lookup = self._lookups.get(key)
        if lookup is None or lookup.get_loop() is not loop:
            lookup = loop.create_task(run_in_threadpool(_authenticate, ctx, token))
            self._lookups[key] = lookup
            lookup.add_done_callback(partial(self._looked_up, key))
        return await asyncio.shield(lookup)

    def _looked_up(self, key: bytes, lookup: asyncio.Task[Principal | None]) -> None:
        if self._lookups.get(key) is lookup:
            del self._lookups[key]
        if not lookup.cancelled():
            lookup.exception()  # retrieved: its waiters were told (or had gone)

    def _retry_after(self, client: str) -> int:
        """0 when `client` may try to authenticate, else the seconds it must wait."""
        wait = 0 if self.limiter is None else self.limiter.retry_after(client, self.clock())
        if wait:
            log.warning("too many failed authentications from %s; refusing for %ds", client, wait)
        return wait

    async def _token_endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The OAuth token endpoint authenticates clients itself: a client over its
        budget is refused before that, and each 401 it answers is a failure counted."""
        client = scope["client"][0] if scope.get("client") else "-"
        wait = self._retry_after(client)
        if wait:
            # RFC 6749 has no code for this; the status and Retry-After say it.
            body = {"error": "invalid_request", "error_description": "too many failed attempts"}
            headers = {"Retry-After": str(wait), "Cache-Control": "no-store"}
            await JSONResponse(body, 429, headers)(scope, receive, send)
            return

        await self.app(scope, receive, self._counting(client, send))

    async def _sign_in(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The web sign-in takes a token in its form: the same budget as bearer tokens,
        so the page is no way around the limit on guessing."""
        client = scope["client"][0] if scope.get("client") else "-"
        wait = self._retry_after(client)
        if wait:
            text = "Too many failed sign-ins. Try again later."
            headers = {"Retry-After": str(wait), "Cache-Control": "no-store"}
            await PlainTextResponse(text, 429, headers)(scope, receive, send)
            return
        await self.app(scope, receive, self._counting(client, send))

    def _counting(self, client: str, send: Send) -> Send:
        """`send`, counting a 401 it carries as a failed authentication of `client`."""

        async def counting(message: Message) -> None:
            failed = message["type"] == "http.response.start" and message["status"] == 401
            if failed and self.limiter is not None:
                self.limiter.failed(client, self.clock())
            await send(message)

        return counting
