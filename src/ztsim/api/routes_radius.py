"""Routes for the AAA configuration (gateways, IP pools) and the live session table.

A gateway's shared secret goes in once, at creation, and never comes out: responses
say only that one is set. Each change is one use case of `ztsim.radius.store.service`,
which publishes it on the change feed with its audit event, so every AAA process picks
it up.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, StringConstraints

from ztsim.api.deps import Ctx, require
from ztsim.api.schemas import Name, Page, Request, _storable
from ztsim.identity.roles import Permission, Principal
from ztsim.radius.serve.coa import DEFAULT_COA_PORT
from ztsim.radius.store import registry, service
from ztsim.sessions import repository as sessions_repo

router = APIRouter()
GatewaysRead = Annotated[Principal, Depends(require(Permission.GATEWAYS_READ))]
GatewaysWrite = Annotated[Principal, Depends(require(Permission.GATEWAYS_WRITE))]
SessionsRead = Annotated[Principal, Depends(require(Permission.SESSIONS_READ))]
Limit = Annotated[int, Query(ge=1, le=1000)]

Apn = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_storable),
]
Secret = Annotated[str, StringConstraints(min_length=16, max_length=128), AfterValidator(_storable)]
Prefix = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_storable)]


class GatewayIn(Request):
    name: Name
    address: Prefix = Field(description="The gateway's source address, or a prefix.")
    secret: Secret = Field(description="RADIUS shared secret; stored sealed, never returned.")
    apns: list[Apn] = Field(min_length=1, max_length=50)
    require_message_authenticator: bool = True
    coa_port: int = Field(default=DEFAULT_COA_PORT, ge=1, le=65535)


class GatewayOut(BaseModel):
    id: str
    name: str
    address: str
    apns: list[str]
    require_message_authenticator: bool
    coa_port: int
    secret_set: bool = True
    created_at: datetime


class PoolIn(Request):
    cidr: Prefix
    static_cidr: Prefix | None = None


class PoolOut(BaseModel):
    id: str
    cidr: str
    static_cidr: str | None
    created_at: datetime


class SessionOut(BaseModel):
    id: int
    gateway_id: str
    acct_session_id: str
    nas_address: str
    imsi: str | None
    iccid: str | None
    identity_id: str | None
    device_id: str | None
    imei: str | None
    ue_address: str | None
    apn: str | None
    rat: str | None
    location: dict[str, object] | None
    started_at: datetime
    updated_at: datetime
    stopped_at: datetime | None
    stop_cause: str | None


def _gateway_out(g: registry.Gateway) -> GatewayOut:
    return GatewayOut(
        id=g.id,
        name=g.name,
        address=g.address,
        apns=g.apns,
        require_message_authenticator=g.require_message_authenticator,
        coa_port=g.coa_port,
        created_at=g.created_at,
    )


@router.post("/gateways", status_code=201, tags=["radius"])
def create_gateway(ctx: Ctx, p: GatewaysWrite, body: GatewayIn) -> GatewayOut:
    """Register a packet gateway as a RADIUS client: its source address or prefix, its
    shared secret (at least 16 octets; stored sealed, never returned), the APNs it may
    attach SIMs to and the port it takes Disconnect-Requests on (`coa_port`). Every AAA
    server loads it at once. Admins only (`gateways:write`); 409 when the name or address is
    already registered or the address lies in another org's space, 422 for a short secret or
    an address with host bits."""
    with ctx.tx() as conn:
        gateway = service.create_gateway(
            conn,
            ctx.sealer,
            p.org_id,
            name=body.name,
            address=body.address,
            secret=body.secret,
            apns=list(body.apns),
            require_message_authenticator=body.require_message_authenticator,
            coa_port=body.coa_port,
            actor=p.actor,
            now=ctx.clock(),
        )
    return _gateway_out(gateway)


@router.get("/gateways", tags=["radius"])
def list_gateways(ctx: Ctx, p: GatewaysRead) -> list[GatewayOut]:
    """The org's packet gateways by name, without their secrets (`secret_set` only says one
    is set). Admins, operators and auditors (`gateways:read`)."""
    with ctx.read() as conn:
        return [_gateway_out(g) for g in registry.list_gateways(conn, p.org_id)]


@router.get("/gateways/{gateway_id}", tags=["radius"])
def get_gateway(ctx: Ctx, p: GatewaysRead, gateway_id: str) -> GatewayOut:
    """One packet gateway, without its secret. Admins, operators and auditors
    (`gateways:read`); 404 for a gateway that is unknown or another org's."""
    with ctx.read() as conn:
        return _gateway_out(registry.get_gateway(conn, p.org_id, gateway_id))


@router.delete("/gateways/{gateway_id}", status_code=204, tags=["radius"])
def delete_gateway(ctx: Ctx, p: GatewaysWrite, gateway_id: str) -> Response:
    """Remove a packet gateway: every AAA server forgets it at once, and its RADIUS requests
    go unanswered from then on. Its live sessions get no Disconnect-Request, since there is
    no secret left to send one with. Admins only (`gateways:write`); 404 for a gateway that
    is unknown or another org's."""
    with ctx.tx() as conn:
        service.delete_gateway(conn, p.org_id, gateway_id, actor=p.actor, now=ctx.clock())
    return Response(status_code=204)


@router.post("/ip-pools", status_code=201, tags=["radius"])
def create_pool(ctx: Ctx, p: GatewaysWrite, body: PoolIn) -> PoolOut:
    """Give the org its IPv4 address pool: `cidr`, the range SIMs are leased addresses from
    at attach, and optionally `static_cidr`, a separate range for static addresses. One pool
    per org; every AAA server loads it at once. Admins only (`gateways:write`); 409 when the
    org has a pool already or a range overlaps another org's address space, 422 for a range
    with host bits or smaller than a /30, or two ranges that overlap."""
    with ctx.tx() as conn:
        pool = service.create_pool(
            conn,
            p.org_id,
            cidr=body.cidr,
            static_cidr=body.static_cidr,
            actor=p.actor,
            now=ctx.clock(),
        )
    return PoolOut(
        id=pool.id, cidr=pool.cidr, static_cidr=pool.static_cidr, created_at=pool.created_at
    )


@router.get("/ip-pools", tags=["radius"])
def list_pools(ctx: Ctx, p: GatewaysRead) -> list[PoolOut]:
    """The org's IPv4 address pool (a list of one, or none yet). Admins, operators and
    auditors (`gateways:read`)."""
    with ctx.read() as conn:
        pools = registry.list_pools(conn, p.org_id)
    return [
        PoolOut(id=x.id, cidr=x.cidr, static_cidr=x.static_cidr, created_at=x.created_at)
        for x in pools
    ]


@router.get("/sessions", tags=["radius"])
def list_sessions(
    ctx: Ctx,
    p: SessionsRead,
    live: bool = True,
    imsi: Annotated[str | None, Query(max_length=15)] = None,
    iccid: Annotated[str | None, Query(max_length=20)] = None,
    identity_id: Annotated[str | None, Query(max_length=32)] = None,
    gateway_id: Annotated[str | None, Query(max_length=32)] = None,
    ue_address: Annotated[str | None, Query(max_length=45)] = None,
    at: AwareDatetime | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> Page[SessionOut]:
    """The org's sessions: gateway, SIM, identity, device, UE address, APN and location,
    filtered by SIM, identity, gateway or address. Sessions, newest first: live ones by
    default; `at` gives who held an address then. Admins, operators, analysts and auditors
    (`sessions:read`)."""
    with ctx.read() as conn:
        items, next_cursor = sessions_repo.list_sessions(
            conn,
            p.org_id,
            sessions_repo.SessionFilter(
                live=live,
                imsi=imsi,
                iccid=iccid,
                identity_id=identity_id,
                gateway_id=gateway_id,
                ue_address=ue_address,
            ),
            limit=limit,
            cursor=cursor,
            at=at,
        )
    return Page[SessionOut](
        items=[SessionOut(id=x.id, **_fields(x.session)) for x in items], next_cursor=next_cursor
    )


def _fields(s: object) -> dict[str, object]:
    names = SessionOut.model_fields.keys() - {"id"}
    return {n: getattr(s, n) for n in names}
