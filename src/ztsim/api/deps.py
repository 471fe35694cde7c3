"""Authentication and authorisation, as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from ztsim.api.context import ApiContext
from ztsim.api.gate import PRINCIPAL_KEY
from ztsim.errors import Forbidden, Unauthenticated
from ztsim.identity import token_store
from ztsim.identity.roles import Permission, Principal, allows

# The dependencies are coroutines: FastAPI runs a plain function in a worker thread, and
# three thread hand-offs per request cost more CPU than many a handler's own work.


async def get_context(request: Request) -> ApiContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, ApiContext)
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]


def _authenticate(ctx: ApiContext, token: str) -> Principal | None:
    with ctx.tx() as conn:
        return token_store.authenticate(conn, token, ctx.clock())


async def _principal(
    request: Request, ctx: Ctx, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    checked = request.scope.get(PRINCIPAL_KEY)
    if isinstance(checked, Principal):
        return checked  # the edge's gate checked the token before the body was read
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("a bearer token is required")
    principal = await run_in_threadpool(_authenticate, ctx, token.strip())
    if principal is None:
        raise Unauthenticated("the token is unknown, expired or revoked")
    return principal


AnyPrincipal = Annotated[Principal, Depends(_principal)]


def require(permission: Permission) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    async def check(principal: AnyPrincipal) -> Principal:
        if not allows(principal.role, permission):
            raise Forbidden(f"role {principal.role.value} may not {permission.value}")
        return principal

    check.__name__ = f"require_{permission.name.lower()}"
    return check


OrgRead = Annotated[Principal, Depends(require(Permission.ORG_READ))]
OrgWrite = Annotated[Principal, Depends(require(Permission.ORG_WRITE))]
IdentitiesRead = Annotated[Principal, Depends(require(Permission.IDENTITIES_READ))]
IdentitiesWrite = Annotated[Principal, Depends(require(Permission.IDENTITIES_WRITE))]
TokensRead = Annotated[Principal, Depends(require(Permission.TOKENS_READ))]
TokensWrite = Annotated[Principal, Depends(require(Permission.TOKENS_WRITE))]
SimsRead = Annotated[Principal, Depends(require(Permission.SIMS_READ))]
SimsWrite = Annotated[Principal, Depends(require(Permission.SIMS_WRITE))]
BindingsWrite = Annotated[Principal, Depends(require(Permission.BINDINGS_WRITE))]
DevicesRead = Annotated[Principal, Depends(require(Permission.DEVICES_READ))]
DevicesWrite = Annotated[Principal, Depends(require(Permission.DEVICES_WRITE))]
ImportsRead = Annotated[Principal, Depends(require(Permission.IMPORTS_READ))]
ImportsWrite = Annotated[Principal, Depends(require(Permission.IMPORTS_WRITE))]
EventsRead = Annotated[Principal, Depends(require(Permission.EVENTS_READ))]
AkaVectors = Annotated[Principal, Depends(require(Permission.AKA_VECTORS))]
