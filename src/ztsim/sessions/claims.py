"""Claims on the address space that every org shares: gateway addresses, IP pools and DNS
networks. A new claim that overlaps another org's claim of any kind is refused.

Why every kind against every kind: ztsim maps a source address to exactly one org in
each of its lookups (a RADIUS datagram's source to a gateway, the longest prefix first;
a DNS query's source to a session's requester, else to the most specific DNS network).
UE addresses come from pools, gateways may send DNS queries themselves (a DNS proxy
in the packet gateway), and a DNS network is by definition a set of sources; so any
cross-org overlap lets one org answer, log or take over another org's traffic.

Claims of one org may overlap each other (its own gateways, pool and networks), as
before. The refusal names nothing but the fact that the space is taken: the caller
learns that some org holds it, never which one or by what kind of claim.

Check and insert are one critical section: on PostgreSQL the caller's transaction takes
an advisory lock first (held to its end); SQLite allows one writer at a time, so a
transaction that took the write lock (`ztsim.db.engine.for_writing`) is alone anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from ipaddress import IPv4Network, IPv6Network, ip_network

from sqlalchemy import Connection, select, text

from ztsim.db import schema
from ztsim.errors import Conflict, InvalidInput

Network = IPv4Network | IPv6Network

# The one advisory lock key of address-space claims (an arbitrary constant: "ztsimADR").
_LOCK_KEY = 0x7A7473696D414452
# RFC 4291 §2.5.5.2: IPv4-mapped IPv6 addresses, ::ffff:0:0/96.
_MAPPED = IPv6Network("::ffff:0:0/96")
_ALL_V4 = IPv4Network("0.0.0.0/0")
CLAIMED = "this address space is already claimed"


def network_of(text_value: str) -> Network:
    """A claim's network; host bits are dropped (DNS networks accept "10.0.0.7/24")."""
    try:
        return ip_network(text_value.strip(), strict=False)
    except ValueError:
        raise InvalidInput(f"not a network: {text_value!r}") from None


def _as_v4(network: Network) -> IPv4Network | None:
    """The IPv4 part of a network, for comparing across families: an IPv4-mapped IPv6
    source is unwrapped by the lookups, so ::ffff:10.0.0.0/104 claims 10.0.0.0/8."""
    if isinstance(network, IPv4Network):
        return network
    if network.subnet_of(_MAPPED):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None
        return IPv4Network((mapped, network.prefixlen - 96))
    if network.supernet_of(_MAPPED):
        return _ALL_V4
    return None


def overlaps(a: Network, b: Network) -> bool:
    if a.version == b.version and a.overlaps(b):
        return True
    a4, b4 = _as_v4(a), _as_v4(b)
    return a4 is not None and b4 is not None and a4.overlaps(b4)


def lock(conn: Connection) -> None:
    """Serialise claim checks until the end of the caller's transaction (PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


def _others(conn: Connection, org_id: str) -> Iterator[str]:
    """Every other org's claims: gateway addresses, pools (dynamic and static), DNS
    networks, and the private networks behind its sites (a route into a tunnel)."""
    g, p, s = schema.radius_gateways, schema.ip_pools, schema.dns_settings
    yield from conn.execute(select(g.c.address).where(g.c.org_id != org_id)).scalars()
    for cidr, static in conn.execute(select(p.c.cidr, p.c.static_cidr).where(p.c.org_id != org_id)):
        yield cidr
        if static:
            yield static
    for networks in conn.execute(select(s.c.networks).where(s.c.org_id != org_id)).scalars():
        yield from networks
    n = schema.net_networks
    yield from conn.execute(select(n.c.cidr).where(n.c.org_id != org_id)).scalars()


def check(conn: Connection, org_id: str, networks: Iterable[Network]) -> None:
    """Refuse (Conflict) when any of `networks` overlaps another org's claim. Call `lock`
    first in the transaction that then writes the claim."""
    wanted = list(networks)
    if not wanted:
        return
    for cidr in _others(conn, org_id):
        held = network_of(cidr)
        if any(overlaps(held, mine) for mine in wanted):
            raise Conflict(CLAIMED)


def claim(conn: Connection, org_id: str, networks: Iterable[Network]) -> None:
    """`lock` and `check` in one call: the caller inserts its claim in the same transaction."""
    wanted = list(networks)
    if wanted:
        lock(conn)
        check(conn, org_id, wanted)
