"""Who calls a CAMARA API: the grant of its OAuth 2.0 access token, and whose number it
asks about.

The edge's gate (`api/gate.py`) checks the bearer token of every CAMARA request before
its body is read and leaves the grant in the scope; `requires` reads it from there (or
checks the token itself, for an app without the gate) and checks the operation's scope.

The subject of a query (CAMARA "Identifying the phone number from the access token"): a
2-legged token names no number, so the request must carry `phoneNumber` (else 422
MISSING_IDENTIFIER); a 3-legged token is bound to one, so the request must not (else 422
UNNECESSARY_IDENTIFIER, even when both name the same number).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.types import Scope

from ztsim.api.camara.errors import (
    MISSING_IDENTIFIER,
    UNNECESSARY_IDENTIFIER,
    CamaraError,
    permission_denied,
    unauthenticated,
)
from ztsim.api.context import ApiContext
from ztsim.risk.clients import Grant
from ztsim.risk.store import clients

__all__ = ["GRANT_KEY", "Grant", "authenticate", "bearer", "requires", "subject_number"]

GRANT_KEY = "ztsim.camara_grant"


def bearer(scope: Scope) -> str | None:
    """The bearer token of a request (RFC 6750 §2.1), or None."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


def authenticate(ctx: ApiContext, token: str) -> Grant | None:
    # A read: no write lock on SQLite.
    with ctx.engine.connect() as conn:
        return clients.authenticate_token(conn, token, ctx.clock())


def requires(scope: str) -> Callable[[Request], Grant]:
    """A dependency: the caller's grant, which must allow `scope` (401 UNAUTHENTICATED
    without a valid token, 403 PERMISSION_DENIED without the scope)."""

    def dependency(request: Request) -> Grant:
        grant = request.scope.get(GRANT_KEY)
        if not isinstance(grant, Grant):
            token = bearer(request.scope)
            ctx = request.app.state.ctx
            assert isinstance(ctx, ApiContext)
            grant = None if token is None else authenticate(ctx, token)
            if grant is None:
                raise unauthenticated()
        if not grant.allows(scope):
            raise permission_denied()
        return grant

    dependency.__name__ = f"requires_{scope.replace(':', '_').replace('-', '_')}"
    return dependency


def subject_number(grant: Grant, phone_number: str | None) -> str:
    """The number (E.164 with '+') a request is about."""
    if grant.phone_number is not None:
        if phone_number is not None:
            raise CamaraError(
                422, UNNECESSARY_IDENTIFIER, "The device is already identified by the access token."
            )
        return grant.phone_number
    if phone_number is None:
        raise CamaraError(422, MISSING_IDENTIFIER, "The device cannot be identified.")
    return phone_number
