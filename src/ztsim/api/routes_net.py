"""Routes for private connectivity (issue 20): sites (where a tunnel from the gateway
ends) and the private networks behind them.

Admins write (`net:write`); operators, analysts and auditors read (`net:read`). Each
change is one use case of `ztsim.net.store.sites`, which publishes a `net` change for the
org with its audit event. A VNI or prefix that another org holds is a 409 that names
nothing of that org.

A Geneve site whose endpoint takes only Ethernet inside (Open vSwitch) is created with
`inner: "ethernet"` and the `site_mac` the frames go to; the answer's `gateway_mac` is
ztsim's own MAC on that tunnel (read only), for the site's permanent neighbour entry.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from ztsim.api.deps import Ctx, require
from ztsim.api.schemas import Request, _storable
from ztsim.identity.roles import Permission, Principal
from ztsim.net.sites import MAX_NAME, MAX_VNI, MIN_VNI, Inner, Network, Site, TunnelKind
from ztsim.net.store import sites as store

router = APIRouter()
NetRead = Annotated[Principal, Depends(require(Permission.NET_READ))]
NetWrite = Annotated[Principal, Depends(require(Permission.NET_WRITE))]

NetName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME),
    AfterValidator(_storable),
]
Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_storable)]
Vni = Annotated[int, Field(ge=MIN_VNI, le=MAX_VNI, description="24-bit VNI (RFC 8926 §3.4).")]
Port = Annotated[int, Field(ge=1, le=65535)]
# Checked by `net.sites.mac_of`, whose message says what a MAC looks like; the length
# only bounds what is read (a MAC with hyphens or spaces around is under 32).
Mac = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32),
    AfterValidator(_storable),
]
_SITE_MAC = (
    "Inner ethernet only, and required there: the MAC of the host or router behind the "
    "site's end of the tunnel (the frames' destination), e.g. 02:00:5e:10:00:01."
)
_INNER = (
    "Geneve only: what the tunnel carries inside. ip: bare IPv4/IPv6; ethernet: frames "
    "to site_mac (Open vSwitch's Geneve takes nothing else). VXLAN sites are ip here: "
    "VXLAN frames its packets itself."
)


class SiteIn(Request):
    name: NetName
    tunnel: TunnelKind = TunnelKind.GENEVE
    endpoint: Text64 = Field(description="The tunnel's far end: a unicast IPv4 or IPv6 address.")
    port: Port | None = Field(
        default=None, description="UDP port; default 6081 for geneve, 4789 for vxlan."
    )
    vni: Vni
    inner: Inner = Field(default=Inner.IP, description=_INNER)
    site_mac: Mac | None = Field(default=None, description=_SITE_MAC)


class SitePatch(Request):
    name: NetName | None = None
    tunnel: TunnelKind | None = None
    endpoint: Text64 | None = None
    port: Port | None = None
    vni: Vni | None = None
    inner: Inner | None = Field(
        default=None, description="ip drops site_mac; a move to vxlan without it sets ip."
    )
    site_mac: Mac | None = Field(default=None, description=_SITE_MAC)


class SiteOut(BaseModel):
    id: str
    name: str
    tunnel: TunnelKind
    endpoint: str
    port: int
    vni: int
    inner: Inner
    site_mac: str | None
    gateway_mac: str | None = Field(
        description=(
            "ztsim's MAC on the tunnel, the frames' source (inner ethernet only): derived "
            "from the site's id, it stays while the site exists. Pin it as the permanent "
            "neighbour of the site's route back to the SIMs: nothing in the tunnel answers ARP."
        )
    )
    created_at: datetime
    updated_at: datetime


class NetworkIn(Request):
    name: NetName
    cidr: Text64 = Field(description="An IPv4 or IPv6 prefix without host bits.")


class NetworkOut(BaseModel):
    id: str
    site_id: str
    name: str
    cidr: str
    created_at: datetime


def _site_out(s: Site) -> SiteOut:
    return SiteOut(
        id=s.id,
        name=s.name,
        tunnel=s.tunnel,
        endpoint=str(s.endpoint),
        port=s.port,
        vni=s.vni,
        inner=s.inner,
        site_mac=s.site_mac,
        gateway_mac=s.gateway_mac,
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


def _network_out(n: Network) -> NetworkOut:
    return NetworkOut(
        id=n.id, site_id=n.site_id, name=n.name, cidr=str(n.cidr), created_at=n.created_at
    )


@router.post("/sites", status_code=201, tags=["net"])
def create_site(ctx: Ctx, p: NetWrite, body: SiteIn) -> SiteOut:
    """Add a site: the far end of a tunnel from the gateway (Geneve or VXLAN: its endpoint
    address, port and VNI), behind which the org's private networks are routed. The net role
    reads the org's sites again at once. Admins only (`net:write`); 409 when the name or VNI
    is taken (a VNI another org holds is refused without naming it), 422 for an invalid
    endpoint, VNI or MAC."""
    with ctx.tx() as conn:
        site = store.create_site(
            conn,
            p.org_id,
            name=body.name,
            tunnel=body.tunnel,
            endpoint=body.endpoint,
            port=body.port,
            vni=body.vni,
            inner=body.inner,
            site_mac=body.site_mac,
            actor=p.actor,
            now=ctx.clock(),
        )
    return _site_out(site)


@router.get("/sites", tags=["net"])
def list_sites(ctx: Ctx, p: NetRead) -> list[SiteOut]:
    """The org's sites by name, with ztsim's own MAC on each tunnel that carries Ethernet
    (`gateway_mac`). Admins, operators, analysts and auditors (`net:read`)."""
    with ctx.read() as conn:
        return [_site_out(s) for s in store.list_sites(conn, p.org_id)]


@router.get("/sites/{site_id}", tags=["net"])
def get_site(ctx: Ctx, p: NetRead, site_id: str) -> SiteOut:
    """One site. Admins, operators, analysts and auditors (`net:read`); 404 for a site that
    is unknown or another org's."""
    with ctx.read() as conn:
        return _site_out(store.get_site(conn, p.org_id, site_id))


@router.patch("/sites/{site_id}", tags=["net"])
def patch_site(ctx: Ctx, p: NetWrite, site_id: str, body: SitePatch) -> SiteOut:
    """Change the given fields of a site and keep the others; a change of tunnel kind may
    reset `inner` and `site_mac`. The net role applies it at once. Admins only
    (`net:write`); 409 when the name or VNI is taken, 404 for a site that is unknown or
    another org's, 422 for an invalid value."""
    with ctx.tx() as conn:
        site = store.update_site(
            conn,
            p.org_id,
            site_id,
            name=body.name,
            tunnel=body.tunnel,
            endpoint=body.endpoint,
            port=body.port,
            vni=body.vni,
            inner=body.inner,
            site_mac=body.site_mac,
            actor=p.actor,
            now=ctx.clock(),
        )
    return _site_out(site)


@router.delete("/sites/{site_id}", status_code=204, tags=["net"])
def delete_site(
    ctx: Ctx,
    p: NetWrite,
    site_id: str,
    force: Annotated[bool, Query(description="Delete the site's networks with it.")] = False,
) -> Response:
    """Delete a site; the net role applies it at once. A site that has networks is a 409
    unless `force=true`, which deletes them with it. Admins only (`net:write`); 404 for a
    site that is unknown or another org's."""
    with ctx.tx() as conn:
        store.delete_site(conn, p.org_id, site_id, force=force, actor=p.actor, now=ctx.clock())
    return Response(status_code=204)


@router.post("/sites/{site_id}/networks", status_code=201, tags=["net"])
def add_network(ctx: Ctx, p: NetWrite, site_id: str, body: NetworkIn) -> NetworkOut:
    """Route a private network (an IPv4 or IPv6 prefix) into the site's tunnel; the org's
    `network` rules decide which SIMs may reach it. The net role applies it at once. Admins
    only (`net:write`); 409 when the name is taken or the prefix overlaps another org's
    address space or a network of another of the org's sites, 404 for a site not in the org."""
    with ctx.tx() as conn:
        network = store.add_network(
            conn, p.org_id, site_id, name=body.name, cidr=body.cidr, actor=p.actor, now=ctx.clock()
        )
    return _network_out(network)


@router.get("/sites/{site_id}/networks", tags=["net"])
def list_site_networks(ctx: Ctx, p: NetRead, site_id: str) -> list[NetworkOut]:
    """The private networks behind a site, by name. Admins, operators, analysts and auditors
    (`net:read`); 404 for a site that is unknown or another org's."""
    with ctx.read() as conn:
        return [_network_out(n) for n in store.list_networks(conn, p.org_id, site_id)]


@router.get("/networks/{network_id}", tags=["net"])
def get_network(ctx: Ctx, p: NetRead, network_id: str) -> NetworkOut:
    """One private network. Admins, operators, analysts and auditors (`net:read`); 404 for a
    network that is unknown or another org's."""
    with ctx.read() as conn:
        return _network_out(store.get_network(conn, p.org_id, network_id))


@router.delete("/networks/{network_id}", status_code=204, tags=["net"])
def delete_network(ctx: Ctx, p: NetWrite, network_id: str) -> Response:
    """Stop routing a private network into its site's tunnel; the net role applies it at
    once. Admins only (`net:write`); 404 for a network that is unknown or another org's."""
    with ctx.tx() as conn:
        store.delete_network(conn, p.org_id, network_id, actor=p.actor, now=ctx.clock())
    return Response(status_code=204)
