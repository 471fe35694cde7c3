"""Every org's sites with the prefixes behind them: what the gateway's tunnels are made of.

The net role builds its tunnel devices and routes from this view, across orgs (VNIs and
prefixes are claimed across orgs, so one gateway can carry them all). It is read in one
query, so the role never sees a site without the networks committed with it. A Geneve
site that takes Ethernet inside comes with its framing: ztsim's MAC on that tunnel (derived
from the site's id) and the MAC behind the site's end.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import Connection, select

from ztsim.db import schema
from ztsim.net.geneve import EthernetFraming
from ztsim.net.sites import (
    Address,
    Inner,
    Prefix,
    TunnelKind,
    endpoint_of,
    gateway_mac_of,
    mac_of,
    prefix_of,
)

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
    # Geneve with Ethernet inside: the frames' addresses (None: bare IP, or VXLAN).
    ethernet: EthernetFraming | None = None


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
            _s.c.inner,
            _s.c.site_mac,
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
                _framing(m["id"], TunnelKind(m["tunnel"]), Inner(m["inner"]), m["site_mac"]),
            )
            known = rows[m["id"]] = (site, [])
        if m["cidr"] is not None:
            known[1].append(prefix_of(m["cidr"]))
    tunnels = [
        replace(site, prefixes=tuple(sorted(prefixes, key=_sort_key)))
        for site, prefixes in rows.values()
    ]
    return sorted(tunnels, key=lambda t: t.vni)


def _framing(
    site_id: str, kind: TunnelKind, inner: Inner, site_mac: str | None
) -> EthernetFraming | None:
    """The frames' addresses of a Geneve site with Ethernet inside: from ztsim's MAC on
    its tunnel to the site's (which the store checked; read strictly all the same)."""
    if kind is not TunnelKind.GENEVE or inner is not Inner.ETHERNET:
        return None
    return EthernetFraming(local=gateway_mac_of(site_id), peer=mac_of(site_mac or ""))
