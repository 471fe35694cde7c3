"""Every org's sites with the prefixes behind them: what the gateway's tunnels are made of.

The net role builds its tunnel devices and routes from this view, across orgs (VNIs and
prefixes are claimed across orgs, so one gateway can carry them all). It is read in one
query, so the role never sees a site without the networks committed with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from ztsim.db import schema
from ztsim.net.sites import Address, Prefix, TunnelKind, endpoint_of, prefix_of

_s, _n = schema.net_sites, schema.net_networks


@dataclass(frozen=True, slots=True)
class SiteTunnel:
    site_id: str
    org_id: str
    name: str
    kind: TunnelKind
    endpoint: Address  # the site's underlay address
    port: int
    vni: int
    prefixes: tuple[Prefix, ...]  # the site's networks' CIDRs, sorted


def _sort_key(prefix: Prefix) -> tuple[int, int, int]:
    return (prefix.version, int(prefix.network_address), prefix.prefixlen)


def read_site_tunnels(conn: Connection) -> list[SiteTunnel]:
    """Every org's sites, sorted by VNI, each with its networks' prefixes (a site
    without networks has none: its tunnel exists, nothing is routed into it)."""
    query = (
        select(
            _s.c.id,
            _s.c.org_id,
            _s.c.name,
            _s.c.tunnel,
            _s.c.endpoint,
            _s.c.port,
            _s.c.vni,
            _n.c.cidr,
        )
        .select_from(_s.outerjoin(_n, _n.c.site_id == _s.c.id))
        .order_by(_s.c.vni)
    )
    rows: dict[str, tuple[SiteTunnel, list[Prefix]]] = {}
    for m in conn.execute(query).mappings():
        known = rows.get(m["id"])
        if known is None:
            site = SiteTunnel(
                m["id"],
                m["org_id"],
                m["name"],
                TunnelKind(m["tunnel"]),
                endpoint_of(m["endpoint"]),
                m["port"],
                m["vni"],
                (),
            )
            known = rows[m["id"]] = (site, [])
        if m["cidr"] is not None:
            known[1].append(prefix_of(m["cidr"]))
    tunnels = [
        _with_prefixes(site, tuple(sorted(prefixes, key=_sort_key)))
        for site, prefixes in rows.values()
    ]
    return sorted(tunnels, key=lambda t: t.vni)


def _with_prefixes(site: SiteTunnel, prefixes: tuple[Prefix, ...]) -> SiteTunnel:
    return SiteTunnel(
        site.site_id,
        site.org_id,
        site.name,
        site.kind,
        site.endpoint,
        site.port,
        site.vni,
        prefixes,
    )
