"""Gateways (RADIUS clients) and IP pools in the database. Every query is scoped by org.

A gateway's shared secret is sealed with the gateway id as associated data and is
never read back by anything but the AAA snapshot loader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Network, ip_network

from sqlalchemy import Connection, RowMapping, delete, insert, select
from sqlalchemy.exc import IntegrityError

from ztsim.clock import new_id
from ztsim.db import schema
from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.sealing import Sealer
from ztsim.sessions import claims

_g = schema.radius_gateways
_p = schema.ip_pools
# RFC 2865 §3 asks for at least 16 octets of shared secret; fewer is refused.
MIN_SECRET_LENGTH = 16


@dataclass(frozen=True, slots=True)
class Gateway:
    id: str
    org_id: str
    name: str
    address: str
    apns: list[str]
    require_message_authenticator: bool
    coa_port: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Pool:
    id: str
    org_id: str
    cidr: str
    static_cidr: str | None
    created_at: datetime


def _gateway(m: RowMapping) -> Gateway:
    return Gateway(
        m["id"],
        m["org_id"],
        m["name"],
        m["address"],
        list(m["apns"]),
        m["require_message_authenticator"],
        m["coa_port"],
        m["created_at"],
    )


def canonical_address(text: str) -> str:
    """An address or prefix in canonical form ("192.0.2.1/32" for a host)."""
    try:
        return str(ip_network(text.strip(), strict=True))
    except ValueError:
        raise InvalidInput("address must be an IP address or a prefix without host bits") from None


def create_gateway(
    conn: Connection,
    sealer: Sealer,
    org_id: str,
    *,
    name: str,
    address: str,
    secret: str,
    apns: list[str],
    require_message_authenticator: bool,
    coa_port: int,
    now: datetime,
) -> Gateway:
    if len(secret.encode()) < MIN_SECRET_LENGTH:
        raise InvalidInput(f"the shared secret must be at least {MIN_SECRET_LENGTH} octets")
    gateway = Gateway(
        new_id(),
        org_id,
        name,
        canonical_address(address),
        sorted({a.strip().lower() for a in apns}),
        require_message_authenticator,
        coa_port,
        now,
    )
    # Another org's address space (gateway, pool or DNS network) is refused: the longest
    # prefix wins the RADIUS lookup, so a nested address would take its traffic over.
    claims.claim(conn, org_id, [ip_network(gateway.address)])
    try:
        with conn.begin_nested():
            conn.execute(
                insert(_g).values(
                    id=gateway.id,
                    org_id=org_id,
                    name=gateway.name,
                    address=gateway.address,
                    secret_sealed=sealer.seal(secret.encode(), gateway.id.encode()),
                    apns=gateway.apns,
                    require_message_authenticator=require_message_authenticator,
                    coa_port=coa_port,
                    created_at=now,
                )
            )
    except IntegrityError:
        raise Conflict("a gateway with this name or address is already registered") from None
    return gateway


def get_gateway(conn: Connection, org_id: str, gateway_id: str) -> Gateway:
    row = conn.execute(select(_g).where(_g.c.org_id == org_id, _g.c.id == gateway_id)).mappings()
    found = row.first()
    if found is None:
        raise NotFound("gateway not found")
    return _gateway(found)


def list_gateways(conn: Connection, org_id: str) -> list[Gateway]:
    rows = conn.execute(select(_g).where(_g.c.org_id == org_id).order_by(_g.c.name)).mappings()
    return [_gateway(m) for m in rows]


def delete_gateway(conn: Connection, org_id: str, gateway_id: str) -> None:
    done = conn.execute(delete(_g).where(_g.c.org_id == org_id, _g.c.id == gateway_id))
    if done.rowcount == 0:
        raise NotFound("gateway not found")


def _ipv4_network(text: str, what: str) -> IPv4Network:
    try:
        network = IPv4Network(text.strip(), strict=True)
    except ValueError:
        raise InvalidInput(f"{what} must be an IPv4 prefix without host bits") from None
    # A pool needs at least one host address besides network and broadcast.
    if network.prefixlen > 30:
        raise InvalidInput(f"{what} must be a /30 or larger")
    return network


def create_pool(
    conn: Connection, org_id: str, *, cidr: str, static_cidr: str | None, now: datetime
) -> Pool:
    dynamic = _ipv4_network(cidr, "cidr")
    static = _ipv4_network(static_cidr, "static_cidr") if static_cidr else None
    if static is not None and static.overlaps(dynamic):
        raise InvalidInput("static_cidr must not overlap cidr")
    pool = Pool(new_id(), org_id, str(dynamic), str(static) if static else None, now)
    # The DNS gateway maps a UE address to one requester: pools of two orgs never overlap.
    claims.claim(conn, org_id, [dynamic] if static is None else [dynamic, static])
    try:
        with conn.begin_nested():
            conn.execute(
                insert(_p).values(
                    id=pool.id,
                    org_id=org_id,
                    cidr=pool.cidr,
                    static_cidr=pool.static_cidr,
                    created_at=now,
                )
            )
    except IntegrityError:
        raise Conflict("the org already has an IP pool") from None
    return pool


def list_pools(conn: Connection, org_id: str) -> list[Pool]:
    rows = conn.execute(select(_p).where(_p.c.org_id == org_id)).mappings()
    return [Pool(m["id"], m["org_id"], m["cidr"], m["static_cidr"], m["created_at"]) for m in rows]
