"""The net context's claims: a VNI names one tunnel on the gateway, and a network's prefix
is routed into one site's tunnel. Both are shared by every org on the gateway.

- A VNI is unique across all sites of all orgs (the table's unique key backs this up).
- A network may not overlap another org's network, nor any other claim of another org
  on the shared address space (gateway addresses, IP pools, DNS networks: see
  `ztsim.sessions.claims`): a route to that prefix through a tunnel would take the other
  org's traffic (a downlink to its UEs, RADIUS to its gateway, DNS answers to its
  sources).
- Within one org, networks of two different sites may not overlap either: traffic to an
  address goes into one tunnel. Networks of the same site may (the routes agree).

A refusal because of another org names nothing but the fact, as `sessions.claims` does;
a refusal because of the caller's own objects names them. Checks and the insert that
follows are one critical section under `sessions.claims.lock` (the same lock as every
other address claim, so a pool and a network cannot slip past each other).
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from ztsim.db import schema
from ztsim.errors import Conflict
from ztsim.net.sites import Prefix
from ztsim.sessions import claims

_s, _n = schema.net_sites, schema.net_networks

CLAIMED = claims.CLAIMED
VNI_CLAIMED = "this VNI is already claimed"


def claim_vni(conn: Connection, org_id: str, vni: int, *, site_id: str) -> None:
    """Refuse (Conflict) when a site other than `site_id` holds `vni`; takes the lock."""
    claims.lock(conn)
    query = select(_s.c.org_id, _s.c.name).where(_s.c.vni == vni, _s.c.id != site_id)
    for holder, name in conn.execute(query):
        if holder == org_id:
            raise Conflict(f"vni {vni} is already the tunnel of site {name!r}")
        raise Conflict(VNI_CLAIMED)


def claim_network(conn: Connection, org_id: str, site_id: str, prefix: Prefix) -> None:
    """Refuse (Conflict) when `prefix` overlaps a network of another site (the org's own:
    named; another org's: not) or another org's address claim; takes the lock."""
    claims.lock(conn)
    query = select(_n.c.org_id, _n.c.site_id, _n.c.name, _n.c.cidr).where(_n.c.site_id != site_id)
    foreign = False
    for holder, _site, name, cidr in conn.execute(query):
        if not claims.overlaps(claims.network_of(cidr), prefix):
            continue
        if holder == org_id:
            raise Conflict(
                f"cidr {prefix} overlaps network {name!r} of another site: traffic to an "
                "address goes into one tunnel"
            )
        foreign = True
    if foreign:
        raise Conflict(CLAIMED)
    claims.check(conn, org_id, [prefix])
