"""From the sites the database holds and what the gateway's kernel has, the steps between.

Pure: the net role reads the kernel (`ip -j`, into `tunnel_state.State`), calls `plan`,
and runs the steps it gets (`serve.tunnels`). Reading again and planning again gives no
steps: that is how `apply` is idempotent, and how a role restarted after a crash adopts
the devices it left.

What the gateway carries per site (devices and MTUs: `tunnel_state`):

- a kernel VXLAN site (RFC 7348) gets a device of its own, `ztv<vni>`, with the site's
  VNI, endpoint and port; the gateway answers ARP on it for the addresses behind it
  (`proxy_arp`), so that a site's return traffic finds the SIMs;
- every Geneve site shares one TUN device (`ztg0`) whose packets ztsim's userspace
  endpoint wraps (RFC 8926): the plan says which sites and routes that engine holds, and
  which sites take Ethernet inside (their frames' addresses);
- every prefix of a site is routed into the site's device (`ip route replace`).

The shared Geneve device keeps the MTU of bare IP; a Geneve site with Ethernet inside
gets its MTU on its routes, so a site that comes, goes or changes its framing never
changes the MTU under the other sites' open flows. The kernel takes a route's MTU before
its device's, for what it forwards as for what it sends (`ip route ... mtu N`, a route
metric).

Only ztsim's devices and the routes through them are touched. A site that cannot be
carried (its endpoint of another address family than the underlay, its endpoint or the
underlay inside a prefix it asks for) is skipped with a reason, so one bad site never
stops the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Protocol

from ztsim.net.geneve import EthernetFraming
from ztsim.net.sites import Address, Prefix, TunnelKind
from ztsim.net.tunnel_state import (
    GENEVE_DEVICE,
    GeneveConfig,
    GeneveSite,
    Link,
    Route,
    State,
    Underlay,
    ethernet_mtu,
    mtus,
    vxlan_device,
)


class Wanted(Protocol):
    """A site as the plan needs it (`net.store.tunnel_view.SiteTunnel` is one)."""

    @property
    def site_id(self) -> str: ...
    @property
    def kind(self) -> TunnelKind: ...
    @property
    def endpoint(self) -> Address: ...
    @property
    def port(self) -> int: ...
    @property
    def vni(self) -> int: ...
    @property
    def prefixes(self) -> tuple[Prefix, ...]: ...
    @property
    def ethernet(self) -> EthernetFraming | None: ...


@dataclass(frozen=True, slots=True)
class Command:
    """One run of a tool: `ip` (batched in order) or `sysctl`."""

    tool: str
    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OpenTun:
    name: str


@dataclass(frozen=True, slots=True)
class CloseTun:
    name: str


@dataclass(frozen=True, slots=True)
class UseGeneve:
    """Run the Geneve endpoint with this configuration from now on."""

    config: GeneveConfig


Action = Command | OpenTun | CloseTun | UseGeneve


@dataclass(frozen=True, slots=True)
class Skipped:
    site_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[Action, ...]
    skipped: tuple[Skipped, ...]


def _ip(*args: object) -> Command:
    return Command("ip", tuple(str(a) for a in args))


def _usable(sites: Sequence[Wanted], underlay: Underlay) -> tuple[list[Wanted], list[Skipped]]:
    """The sites that can be carried, by VNI, and why the others cannot."""
    local = ip_address(underlay.address)
    kept: list[Wanted] = []
    skipped: list[Skipped] = []
    vnis: set[int] = set()
    claimed: set[Prefix] = set()
    geneve_peers: set[Address] = set()
    endpoints = [s.endpoint for s in sites]
    for site in sorted(sites, key=lambda s: (s.vni, s.site_id)):
        reason = ""
        if site.endpoint.version != local.version:
            reason = f"endpoint {site.endpoint} is not of the underlay's family"
        elif site.vni in vnis:
            reason = f"VNI {site.vni} is another site's"
        elif site.kind is TunnelKind.GENEVE and site.endpoint in geneve_peers:
            reason = f"another Geneve site is at {site.endpoint}"
        elif taken := [p for p in site.prefixes if p in claimed]:
            reason = f"{taken[0]} is another site's"
        elif inside := [p for p in site.prefixes if any(a in p for a in (local, *endpoints))]:
            reason = f"{inside[0]} holds a tunnel endpoint: the tunnel would carry itself"
        if reason:
            skipped.append(Skipped(site.site_id, reason))
            continue
        kept.append(site)
        vnis.add(site.vni)
        claimed.update(site.prefixes)
        if site.kind is TunnelKind.GENEVE:
            geneve_peers.add(site.endpoint)
    return kept, skipped


def geneve_config(sites: Iterable[Wanted]) -> GeneveConfig | None:
    """The endpoint's configuration for the Geneve sites among `sites` (None: none)."""
    geneve = [s for s in sites if s.kind is TunnelKind.GENEVE]
    if not geneve:
        return None
    return GeneveConfig(
        tuple(GeneveSite(s.site_id, s.vni, str(s.endpoint), s.port, s.ethernet) for s in geneve),
        tuple((str(p), s.site_id) for s in geneve for p in s.prefixes),
    )


def plan(sites: Sequence[Wanted], state: State, underlay: Underlay) -> Plan:
    """The steps from `state` to `sites` carried over `underlay`, in the order to run them:
    routes of sites that went, devices that went or changed, new devices, the endpoint's
    configuration, then the routes that are missing (so no prefix is routed into a device
    before the device, or the engine, can carry it)."""
    kept, skipped = _usable(sites, underlay)
    vxlan_mtu, geneve_mtu = mtus(underlay)
    wanted = {
        vxlan_device(s.vni): Link(
            vxlan_device(s.vni),
            "vxlan",
            vxlan_mtu,
            True,
            s.vni,
            str(s.endpoint),
            underlay.address,
            s.port,
        )
        for s in kept
        if s.kind is TunnelKind.VXLAN
    }
    config = geneve_config(kept)
    routes = {_route(s, p, underlay) for s in kept for p in s.prefixes}
    # The TUN device is ours only while our endpoint runs: without it, a device of that
    # name is someone else's, and opening ours will say so.
    tun = state.links.get(GENEVE_DEVICE) if state.geneve is not None else None
    close_tun = state.geneve is not None and (config is None or tun is None)
    open_tun = config is not None and (state.geneve is None or close_tun)
    vxlans = {n: link for n, link in state.links.items() if n != GENEVE_DEVICE}
    gone, made, tuned = _links(vxlans, wanted)
    if close_tun:
        gone.add(GENEVE_DEVICE)
    if open_tun:
        made.add(GENEVE_DEVICE)
    elif config is not None and tun is not None and (tun.mtu, tun.up) != (geneve_mtu, True):
        tuned.add(GENEVE_DEVICE)
    # Routes through a device that is deleted go with it, and must be made again on
    # the device that replaces it.
    present = {r for r in state.routes if r.device not in gone}
    wanted_routes = {(r.prefix, r.device) for r in routes}
    stale = [r for r in present if (r.prefix, r.device) not in wanted_routes]
    actions: list[Action] = [
        _ip("route", "del", r.prefix, "dev", r.device) for r in sorted(stale, key=_route_key)
    ]
    for name in sorted(gone):
        actions.append(CloseTun(name) if name == GENEVE_DEVICE else _ip("link", "del", "dev", name))
    for name in sorted(made - {GENEVE_DEVICE}):
        link = wanted[name]
        actions.append(
            _ip(
                *("link", "add", name, "type", "vxlan", "id", link.vni),
                *("remote", link.remote, "local", link.local, "dstport", link.port),
            )
        )
        # The SIMs' addresses are not on this device: the gateway answers ARP for them,
        # at once (proxy answers wait up to proxy_delay, 0.8 s by default, otherwise).
        arp = (f"net.ipv4.conf.{name}.proxy_arp=1", f"net.ipv4.neigh.{name}.proxy_delay=0")
        actions.append(Command("sysctl", ("-qw", *arp)))
    if open_tun:
        actions.append(OpenTun(GENEVE_DEVICE))
    for name in sorted(made | tuned):
        mtu = geneve_mtu if name == GENEVE_DEVICE else wanted[name].mtu
        actions.append(_ip("link", "set", "dev", name, "mtu", mtu, "up"))
    if config is not None and (open_tun or config != state.geneve):
        actions.append(UseGeneve(config))
    # A route whose MTU differs is replaced in place: `replace` sets the metrics anew.
    actions += [_replace(r) for r in sorted(routes - present, key=_route_key)]
    return Plan(tuple(actions), tuple(skipped))


def _route(site: Wanted, prefix: Prefix, underlay: Underlay) -> Route:
    if site.kind is TunnelKind.VXLAN:
        return Route(prefix, vxlan_device(site.vni))
    framed = site.ethernet is not None
    return Route(prefix, GENEVE_DEVICE, ethernet_mtu(underlay) if framed else None)


def _replace(route: Route) -> Command:
    mtu = () if route.mtu is None else ("mtu", route.mtu)
    return _ip("route", "replace", route.prefix, "dev", route.device, *mtu)


def _links(
    have: Mapping[str, Link], wanted: Mapping[str, Link]
) -> tuple[set[str], set[str], set[str]]:
    """(to delete, to make, to set up or resize): a device whose identity differs (kind,
    VNI, endpoints, port) is made again; one whose MTU or state drifted is only set."""
    gone = {
        n for n, link in have.items() if n not in wanted or _identity(link) != _identity(wanted[n])
    }
    made = {n for n in wanted if n not in have or n in gone}
    tuned = {
        n
        for n, link in wanted.items()
        if n not in made and (have[n].mtu, have[n].up) != (link.mtu, link.up)
    }
    return gone, made, tuned


def _identity(link: Link) -> tuple[object, ...]:
    return (link.kind, link.vni, link.remote, link.local, link.port)


def _route_key(route: Route) -> tuple[int, int, int, str]:
    prefix = route.prefix
    return (prefix.version, int(prefix.network_address), prefix.prefixlen, route.device)
