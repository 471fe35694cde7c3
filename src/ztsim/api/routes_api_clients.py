"""Routes for the org's CAMARA API clients (`/api/v1/api-clients`): OAuth 2.0 client
credentials an admin registers for an API consumer (an IdP, a bank's fraud check). The
client secret is in the creation's response only; it is stored as a hash."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field, StringConstraints

from ztsim.api.deps import Ctx, require
from ztsim.api.schemas import Name, Request
from ztsim.identity.roles import Permission, Principal
from ztsim.risk import clients as scopes
from ztsim.risk.store import clients

router = APIRouter()

ApiClientsRead = Annotated[Principal, Depends(require(Permission.API_CLIENTS_READ))]
ApiClientsWrite = Annotated[Principal, Depends(require(Permission.API_CLIENTS_WRITE))]
ClientId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
Scope = Literal[
    "sim-swap",
    "sim-swap:check",
    "sim-swap:retrieve-date",
    "device-swap",
    "device-swap:check",
    "device-swap:retrieve-date",
    "sim-swap-subscriptions:org.camaraproject.sim-swap-subscriptions.v0.swapped:create",
    "sim-swap-subscriptions:read",
    "sim-swap-subscriptions:delete",
]
PhoneNumber = Annotated[str, StringConstraints(pattern=scopes.PHONE_NUMBER.pattern)]


class ApiClientIn(Request):
    name: Name
    scopes: list[Scope] = Field(min_length=1, max_length=len(scopes.SCOPES))
    phone_number: PhoneNumber | None = Field(
        default=None,
        description="Makes the client's tokens 3-legged: bound to this number of the org "
        "(E.164 with '+'); requests then must not name a number.",
    )


class ApiClientOut(BaseModel):
    id: str = Field(description="The OAuth client_id.")
    name: str
    scopes: list[str]
    phone_number: str | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class ApiClientCreated(ApiClientOut):
    client_secret: str = Field(description="The OAuth client_secret. Shown once; store it now.")


def _out(client: clients.ApiClient) -> ApiClientOut:
    return ApiClientOut(
        id=client.id,
        name=client.name,
        scopes=sorted(client.scopes),
        phone_number=client.phone_number,
        created_by=client.created_by,
        created_at=client.created_at,
        revoked_at=client.revoked_at,
    )


@router.post("/api-clients", status_code=201, tags=["camara"])
def create_api_client(ctx: Ctx, p: ApiClientsWrite, body: ApiClientIn) -> ApiClientCreated:
    """Register a CAMARA API consumer (an IdP, a bank's fraud check) as an OAuth 2.0 client
    with the scopes it may ask for: SIM Swap, Device Swap and SIM Swap Subscriptions. With
    `phone_number` its tokens are 3-legged, bound to that number of the org. The
    `client_secret` is in this response only; ztsim keeps a hash. Admins only
    (`api-clients:write`); 422 for a number that no SIM of the org has."""
    with ctx.tx() as conn:
        client, secret = clients.create_client(
            conn,
            p.org_id,
            name=body.name,
            scopes=body.scopes,
            phone_number=body.phone_number,
            actor=p.actor,
            now=ctx.clock(),
            random=ctx.random,
        )
    return ApiClientCreated(**_out(client).model_dump(), client_secret=secret)


@router.get("/api-clients", tags=["camara"])
def list_api_clients(ctx: Ctx, p: ApiClientsRead) -> list[ApiClientOut]:
    """The org's CAMARA API clients, oldest first, with their scopes, bound number and
    revocation time; never their secrets. Admins and auditors (`api-clients:read`)."""
    with ctx.read() as conn:
        return [_out(c) for c in clients.list_clients(conn, p.org_id)]


@router.get("/api-clients/{api_client_id}", tags=["camara"])
def get_api_client(ctx: Ctx, p: ApiClientsRead, api_client_id: ClientId) -> ApiClientOut:
    """One CAMARA API client, without its secret. Admins and auditors (`api-clients:read`);
    404 for a client that is unknown or another org's."""
    with ctx.read() as conn:
        return _out(clients.get_client(conn, p.org_id, api_client_id))


@router.delete("/api-clients/{api_client_id}", tags=["camara"])
def revoke_api_client(ctx: Ctx, p: ApiClientsWrite, api_client_id: ClientId) -> ApiClientOut:
    """Revoke the client: its tokens stop working at once, and it gets no new ones. Revoking
    twice changes nothing. Admins only (`api-clients:write`); 404 for a client not in the
    org."""
    with ctx.tx() as conn:
        client = clients.revoke_client(
            conn, p.org_id, api_client_id, actor=p.actor, now=ctx.clock()
        )
    return _out(client)
