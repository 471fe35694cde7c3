"""The tunnel plan: the exact steps for a fresh gateway, for sites that change or go, the
sites it cannot carry and why, a Geneve site with Ethernet inside (its framing in the
engine's configuration, its routes' MTU 14 octets lower, the shared device's unchanged),
and (Hypothesis, on a strict model of the kernel) that from any gateway its steps reach
exactly the sites asked for and a second plan is empty."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.net.geneve import EthernetFraming
from ztsim.net.sites import Prefix, TunnelKind
from ztsim.net.store.tunnel_view import SiteTunnel
from ztsim.net.tunnel_plan import (
    CloseTun,
    Command,
    OpenTun,
    Plan,
    Skipped,
    UseGeneve,
    plan,
)
from ztsim.net.tunnel_state import (
    GENEVE_DEVICE,
    GeneveConfig,
    GeneveSite,
    Link,
    Route,
    State,
    Underlay,
    ethernet_mtu,
    is_ours,
    mtus,
    vxlan_device,
)

from support.net_tunnel_model import Gateway

UNDERLAY = Underlay("198.18.0.1", 1500)
EMPTY = State({}, frozenset())


FRAMING = EthernetFraming("02:11:22:33:44:55", "aa:bb:cc:00:00:01")


def _site(
    vni: int,
    kind: TunnelKind,
    endpoint: str,
    *cidrs: str,
    port: int | None = None,
    ethernet: EthernetFraming | None = None,
) -> SiteTunnel:
    port = port or (6081 if kind is TunnelKind.GENEVE else 4789)
    prefixes = tuple(ip_network(c) for c in cidrs)
    return SiteTunnel(
        f"s{vni}", "org", f"site {vni}", kind, ip_address(endpoint), port, vni, prefixes, ethernet
    )


def _ip(line: str) -> Command:
    return Command("ip", tuple(line.split()))


HQ = _site(7, TunnelKind.GENEVE, "198.18.0.2", "10.30.0.0/24", "10.31.0.0/24")
LAB = _site(9, TunnelKind.VXLAN, "198.18.0.3", "10.40.0.0/24")


def test_the_mtus_leave_room_for_the_outer_headers() -> None:
    assert mtus(UNDERLAY) == (1450, 1432)  # RFC 7348 §5's 50 octets; Geneve's 36 + 32
    assert mtus(Underlay("2001:db8::1", 1500)) == (1430, 1412)
    assert mtus(Underlay("198.18.0.1", 9000)) == (8950, 8932)


def test_a_fresh_gateway_gets_devices_then_the_engine_then_routes() -> None:
    got = plan([LAB, HQ], EMPTY, UNDERLAY)
    config = GeneveConfig(
        (GeneveSite("s7", 7, "198.18.0.2", 6081),), (("10.30.0.0/24", "s7"), ("10.31.0.0/24", "s7"))
    )
    assert got == Plan(
        (
            _ip("link add ztv9 type vxlan id 9 remote 198.18.0.3 local 198.18.0.1 dstport 4789"),
            Command(
                "sysctl",
                ("-qw", "net.ipv4.conf.ztv9.proxy_arp=1", "net.ipv4.neigh.ztv9.proxy_delay=0"),
            ),
            OpenTun(GENEVE_DEVICE),
            _ip("link set dev ztg0 mtu 1432 up"),
            _ip("link set dev ztv9 mtu 1450 up"),
            UseGeneve(config),
            _ip("route replace 10.30.0.0/24 dev ztg0"),
            _ip("route replace 10.31.0.0/24 dev ztg0"),
            _ip("route replace 10.40.0.0/24 dev ztv9"),
        ),
        (),
    )


def _after(sites: list[SiteTunnel], start: State = EMPTY) -> Gateway:
    routes = {r.prefix: (r.device, r.mtu) for r in start.routes}
    gateway = Gateway(dict(start.links), routes, start.geneve)
    gateway.run(plan(sites, gateway.state(), UNDERLAY).actions)
    return gateway


def test_sites_that_go_take_their_routes_and_devices() -> None:
    gateway = _after([HQ, LAB])
    smaller = _site(7, TunnelKind.GENEVE, "198.18.0.2", "10.30.0.0/24")
    got = plan([smaller], gateway.state(), UNDERLAY).actions
    config = GeneveConfig((GeneveSite("s7", 7, "198.18.0.2", 6081),), (("10.30.0.0/24", "s7"),))
    assert got == (
        _ip("route del 10.31.0.0/24 dev ztg0"),
        _ip("link del dev ztv9"),
        UseGeneve(config),
    )
    gateway.run(got)
    assert plan([], gateway.state(), UNDERLAY).actions == (CloseTun(GENEVE_DEVICE),)


def test_a_changed_endpoint_remakes_the_device_and_its_routes_a_new_vni_renames_it() -> None:
    gateway = _after([LAB])
    moved = _site(9, TunnelKind.VXLAN, "198.18.0.4", "10.40.0.0/24")
    got = plan([moved], gateway.state(), UNDERLAY).actions
    assert got[0] == _ip("link del dev ztv9")
    assert got[-1] == _ip("route replace 10.40.0.0/24 dev ztv9")
    renamed = _site(10, TunnelKind.VXLAN, "198.18.0.3", "10.40.0.0/24")
    got = plan([renamed], gateway.state(), UNDERLAY).actions
    assert got[0] == _ip("link del dev ztv9")
    assert got[-1] == _ip("route replace 10.40.0.0/24 dev ztv10")


def test_an_ethernet_site_gets_its_frames_and_routes_14_octets_narrower() -> None:
    """The frame is the Ethernet site's cost alone: its routes carry the MTU, the shared
    device keeps bare IP's for the other Geneve sites."""
    assert ethernet_mtu(UNDERLAY) == 1418  # 1432 - 14 (IEEE 802.3 header)
    assert ethernet_mtu(Underlay("2001:db8::1", 1500)) == 1398
    assert ethernet_mtu(Underlay("198.18.0.1", 100)) == 68  # never below IPv4's minimum
    ovs = _site(8, TunnelKind.GENEVE, "198.18.0.4", "10.50.0.0/24", ethernet=FRAMING)
    got = plan([HQ, ovs], EMPTY, UNDERLAY).actions
    sites = (
        GeneveSite("s7", 7, "198.18.0.2", 6081),
        GeneveSite("s8", 8, "198.18.0.4", 6081, FRAMING),
    )
    routes = (("10.30.0.0/24", "s7"), ("10.31.0.0/24", "s7"), ("10.50.0.0/24", "s8"))
    assert got == (
        OpenTun(GENEVE_DEVICE),
        _ip("link set dev ztg0 mtu 1432 up"),
        UseGeneve(GeneveConfig(sites, routes)),
        _ip("route replace 10.30.0.0/24 dev ztg0"),
        _ip("route replace 10.31.0.0/24 dev ztg0"),
        _ip("route replace 10.50.0.0/24 dev ztg0 mtu 1418"),
    )


def test_a_site_that_changes_its_framing_changes_its_routes_in_place() -> None:
    """No route is deleted on the way (no moment without one): `replace` sets the MTU,
    or takes it away; the engine is reconfigured first."""
    gateway = _after([HQ])
    framed = _site(
        7, TunnelKind.GENEVE, "198.18.0.2", "10.30.0.0/24", "10.31.0.0/24", ethernet=FRAMING
    )
    got = plan([framed], gateway.state(), UNDERLAY).actions
    config = GeneveConfig(
        (GeneveSite("s7", 7, "198.18.0.2", 6081, FRAMING),),
        (("10.30.0.0/24", "s7"), ("10.31.0.0/24", "s7")),
    )
    assert got == (
        UseGeneve(config),
        _ip("route replace 10.30.0.0/24 dev ztg0 mtu 1418"),
        _ip("route replace 10.31.0.0/24 dev ztg0 mtu 1418"),
    )
    gateway.run(got)
    assert Route(ip_network("10.30.0.0/24"), GENEVE_DEVICE, 1418) in gateway.state().routes
    assert plan([framed], gateway.state(), UNDERLAY).actions == ()
    got = plan([HQ], gateway.state(), UNDERLAY).actions
    assert got[1:] == (
        _ip("route replace 10.30.0.0/24 dev ztg0"),
        _ip("route replace 10.31.0.0/24 dev ztg0"),
    )
    # Another site's frames: only the engine changes (the addresses are not the routes').
    gateway.run(plan([framed], gateway.state(), UNDERLAY).actions)
    other = EthernetFraming(FRAMING.local, "aa:bb:cc:00:00:02")
    moved = _site(
        7, TunnelKind.GENEVE, "198.18.0.2", "10.30.0.0/24", "10.31.0.0/24", ethernet=other
    )
    got = plan([moved], gateway.state(), UNDERLAY).actions
    assert [type(a) for a in got] == [UseGeneve]


def test_a_drifted_mtu_is_set_again_without_remaking_the_device() -> None:
    gateway = _after([LAB])
    gateway.links["ztv9"] = Link("ztv9", "vxlan", 1400, True, 9, "198.18.0.3", "198.18.0.1", 4789)
    assert plan([LAB], gateway.state(), UNDERLAY).actions == (_ip("link set dev ztv9 mtu 1450 up"),)


def test_a_tun_device_not_ours_is_not_adopted() -> None:
    """A `ztg0` while our endpoint is closed is someone else's: we open ours (and fail
    loudly there) rather than route into it."""
    stranger = State({GENEVE_DEVICE: Link(GENEVE_DEVICE, "tun", 1432, True)}, frozenset())
    assert OpenTun(GENEVE_DEVICE) in plan([HQ], stranger, UNDERLAY).actions


def test_sites_that_cannot_be_carried_are_skipped_with_a_reason() -> None:
    sites = [
        _site(1, TunnelKind.GENEVE, "2001:db8::2", "10.1.0.0/24"),
        _site(2, TunnelKind.GENEVE, "198.18.0.2", "10.2.0.0/24"),
        _site(3, TunnelKind.GENEVE, "198.18.0.2", "10.3.0.0/24"),
        _site(4, TunnelKind.VXLAN, "198.18.0.2", "10.2.0.0/24"),
        _site(5, TunnelKind.VXLAN, "198.18.0.5", "198.18.0.0/24"),
        _site(6, TunnelKind.VXLAN, "198.18.0.6", "10.6.0.0/24"),
    ]
    got = plan(sites, EMPTY, UNDERLAY)
    assert got.skipped == (
        Skipped("s1", "endpoint 2001:db8::2 is not of the underlay's family"),
        Skipped("s3", "another Geneve site is at 198.18.0.2"),
        Skipped("s4", "10.2.0.0/24 is another site's"),
        Skipped("s5", "198.18.0.0/24 holds a tunnel endpoint: the tunnel would carry itself"),
    )
    assert {
        a.args[-1] for a in got.actions if isinstance(a, Command) and a.args[1] == "replace"
    } == {
        GENEVE_DEVICE,
        "ztv6",
    }


def test_only_our_device_names_are_ours() -> None:
    assert [is_ours(n) for n in ("ztv1", "ztv16777215", "ztg0", "ztv", "ztvx", "eth0", "ztg1")] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    assert vxlan_device(16777215) == "ztv16777215"  # 11 octets: the kernel allows 15


# -- any gateway, any sites ----------------------------------------------------------------

_PREFIXES = [ip_network(f"10.{i}.0.0/24") for i in range(8)] + [ip_network("2001:db8:5::/48")]


@st.composite
def _sites(draw: st.DrawFn) -> list[SiteTunnel]:
    vnis = draw(st.lists(st.integers(1, 12), unique=True, max_size=5))
    pool: list[Prefix] = list(_PREFIXES)
    sites = []
    for vni in vnis:
        kind = draw(st.sampled_from(TunnelKind))
        host = draw(st.integers(2, 6))
        taken = draw(st.lists(st.sampled_from(pool), unique=True, max_size=3)) if pool else []
        pool = [p for p in pool if p not in taken]
        port = draw(st.sampled_from([None, 4790]))
        ethernet = draw(st.sampled_from([None, FRAMING]))
        address = f"198.18.0.{host}"
        sites.append(_site(vni, kind, address, *map(str, taken), port=port, ethernet=ethernet))
    return sites


def _carried(gateway: Gateway, sites: list[SiteTunnel]) -> None:
    kept = [
        s
        for s in sites
        if s.site_id not in {k.site_id for k in plan(sites, EMPTY, UNDERLAY).skipped}
    ]
    want_routes = {
        p: (vxlan_device(s.vni), None)
        if s.kind is TunnelKind.VXLAN
        else (GENEVE_DEVICE, None if s.ethernet is None else 1418)
        for s in kept
        for p in s.prefixes
    }
    assert gateway.routes == want_routes
    vxlans = {vxlan_device(s.vni): s for s in kept if s.kind is TunnelKind.VXLAN}
    assert set(gateway.links) == set(vxlans) | ({GENEVE_DEVICE} if gateway.geneve else set())
    assert gateway.proxy_arp == set(vxlans)
    for name, site in vxlans.items():
        link = gateway.links[name]
        assert (link.vni, link.remote, link.port, link.mtu, link.up) == (
            site.vni,
            str(site.endpoint),
            site.port,
            1450,
            True,
        )
    geneve = [s for s in kept if s.kind is TunnelKind.GENEVE]
    assert (gateway.geneve is None) == (not geneve)
    if gateway.geneve is not None:
        assert {(s.site_id, s.ethernet) for s in gateway.geneve.sites} == {
            (s.site_id, s.ethernet) for s in geneve
        }
        assert gateway.links[GENEVE_DEVICE].mtu == 1432


@settings(max_examples=300, deadline=None)
@given(_sites(), _sites(), st.integers(1200, 1500))
def test_from_any_gateway_the_plan_reaches_the_sites_and_then_rests(
    before: list[SiteTunnel], after: list[SiteTunnel], drifted: int
) -> None:
    gateway = _after(before)
    for name, link in list(gateway.links.items())[:1]:  # an operator's hand on one MTU
        gateway.links[name] = Link(
            name, link.kind, drifted, link.up, link.vni, link.remote, link.local, link.port
        )
    gateway.run(plan(after, gateway.state(), UNDERLAY).actions)
    _carried(gateway, after)
    assert plan(after, gateway.state(), UNDERLAY).actions == ()
