"""What the gateways page shows: the org's RADIUS gateways (never their shared secrets:
the registry does not read them) with how recently each was heard from, and its IP pool
with how many addresses are in use.

"Heard from" is what the store knows, read as the overview reads it
(`ztsim.web.gateway_health`): each gateway's live sessions and its newest accounting
within the last day. The leases have no count by pool in their store, so that count is
read here, one grouped query scoped by org; the lists come from the registry the API uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from ipaddress import ip_network

from sqlalchemy import Connection, func, select

from ztsim.db import schema
from ztsim.identity.roles import Permission
from ztsim.radius.store import registry
from ztsim.web import gateway_health
from ztsim.web.viewer import Viewer

RECENT = gateway_health.RECENT
_leases = schema.ip_leases


@dataclass(frozen=True, slots=True)
class GatewayRow:
    gateway: registry.Gateway
    live_sessions: int | None  # None: the role may not read sessions
    last_seen: datetime | None  # None: no accounting within RECENT, or not readable


@dataclass(frozen=True, slots=True)
class PoolRow:
    pool: registry.Pool
    size: int  # addresses in the dynamic prefix
    static_size: int  # addresses in the static prefix (0 without one)
    in_use: int  # leases held, dynamic and static


@dataclass(frozen=True, slots=True)
class GatewaysView:
    gateways: list[GatewayRow]
    pools: list[PoolRow]
    sessions_shown: bool
    recent_hours: int = int(RECENT.total_seconds() // 3600)


def addresses_in(cidr: str | None) -> int:
    return 0 if cidr is None else ip_network(cidr, strict=False).num_addresses


def leases_in_use(conn: Connection, org_id: str) -> dict[str, int]:
    """Per pool id: the addresses leased to SIMs."""
    rows = conn.execute(
        select(_leases.c.pool_id, func.count())
        .where(_leases.c.org_id == org_id)
        .group_by(_leases.c.pool_id)
    ).all()
    return {pool: int(n) for pool, n in rows}


def _gateways(conn: Connection, org_id: str, now: datetime, sessions: bool) -> list[GatewayRow]:
    if sessions:
        rows = [
            GatewayRow(h.gateway, h.live, h.last_accounting)
            for h in gateway_health.read(conn, org_id, now)
        ]
    else:
        rows = [GatewayRow(g, None, None) for g in registry.list_gateways(conn, org_id)]
    return sorted(rows, key=lambda r: (r.gateway.name, r.gateway.id))


def read(conn: Connection, viewer: Viewer, now: datetime) -> GatewaysView:
    org = viewer.principal.org_id
    sessions_shown = viewer.may(Permission.SESSIONS_READ)
    used = leases_in_use(conn, org)
    pools = [
        PoolRow(p, addresses_in(p.cidr), addresses_in(p.static_cidr), used.get(p.id, 0))
        for p in registry.list_pools(conn, org)
    ]
    return GatewaysView(_gateways(conn, org, now, sessions_shown), pools, sessions_shown)
