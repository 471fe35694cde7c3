"""The tunnel view: every org's sites by VNI, each with its networks' prefixes sorted (IPv4
before IPv6, by address), a site without networks with none; a Geneve site with
Ethernet inside with its frames' addresses (ztsim's MAC on that tunnel, and the site's)."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_network

from sqlalchemy import Connection, Engine

from ztsim.identity import repository as identities
from ztsim.net.geneve import EthernetFraming
from ztsim.net.sites import Inner, TunnelKind, gateway_mac_of
from ztsim.net.store import sites
from ztsim.net.store.tunnel_view import SiteTunnel, read_site_tunnels

from tests_clock import NOW


def _org(conn: Connection, slug: str) -> str:
    return identities.create_org(conn, slug.upper(), slug, NOW).id


def _site(conn: Connection, org: str, name: str, vni: int, kind: TunnelKind, at: str) -> str:
    made = sites.create_site(
        conn, org, name=name, tunnel=kind, endpoint=at, vni=vni, actor="t", now=NOW
    )
    return made.id


def _net(conn: Connection, org: str, site: str, name: str, cidr: str) -> None:
    sites.add_network(conn, org, site, name=name, cidr=cidr, actor="t", now=NOW)


def test_no_sites_no_tunnels(engine: Engine) -> None:
    with engine.connect() as conn:
        assert read_site_tunnels(conn) == []


def test_every_org_s_sites_by_vni_with_sorted_prefixes(engine: Engine) -> None:
    with engine.begin() as conn:
        a, b = _org(conn, "a"), _org(conn, "b")
        hq = _site(conn, a, "hq", 300, TunnelKind.GENEVE, "192.0.2.1")
        lab = _site(conn, b, "lab", 7, TunnelKind.VXLAN, "192.0.2.2")
        empty = _site(conn, a, "empty", 40, TunnelKind.GENEVE, "2001:db8::9")
        _net(conn, a, hq, "v6", "2001:db8:1::/48")
        _net(conn, a, hq, "wide", "10.20.0.0/16")
        _net(conn, a, hq, "narrow", "10.3.0.0/24")
        _net(conn, b, lab, "lab", "172.16.0.0/12")
    with engine.connect() as conn:
        got = read_site_tunnels(conn)
    assert [t.vni for t in got] == [7, 40, 300]
    assert got[0] == SiteTunnel(
        lab,
        b,
        "lab",
        TunnelKind.VXLAN,
        IPv4Address("192.0.2.2"),
        4789,
        7,
        (ip_network("172.16.0.0/12"),),
    )
    assert (got[1].site_id, got[1].prefixes, got[1].port) == (empty, (), 6081)
    assert got[2].prefixes == (
        ip_network("10.3.0.0/24"),
        ip_network("10.20.0.0/16"),
        ip_network("2001:db8:1::/48"),
    )
    assert (got[2].org_id, got[2].kind) == (a, TunnelKind.GENEVE)


def test_a_deleted_site_and_network_leave_the_view(engine: Engine) -> None:
    with engine.begin() as conn:
        a = _org(conn, "a")
        hq = _site(conn, a, "hq", 5, TunnelKind.GENEVE, "192.0.2.1")
        lab = _site(conn, a, "lab", 6, TunnelKind.VXLAN, "192.0.2.2")
        _net(conn, a, hq, "one", "10.1.0.0/16")
        _net(conn, a, lab, "two", "10.2.0.0/16")
        sites.delete_site(conn, a, hq, force=True, actor="t", now=NOW)
    with engine.connect() as conn:
        got = read_site_tunnels(conn)
    assert [(t.site_id, t.prefixes) for t in got] == [(lab, (ip_network("10.2.0.0/16"),))]


def test_a_geneve_site_with_ethernet_inside_comes_with_its_frames_addresses(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        a = _org(conn, "a")
        bare = _site(conn, a, "bare", 1, TunnelKind.GENEVE, "192.0.2.1")
        ovs = sites.create_site(
            conn,
            a,
            name="ovs",
            tunnel=TunnelKind.GENEVE,
            endpoint="192.0.2.2",
            vni=2,
            inner=Inner.ETHERNET,
            site_mac="aa:bb:cc:00:00:01",
            actor="t",
            now=NOW,
        )
        lab = _site(conn, a, "lab", 3, TunnelKind.VXLAN, "192.0.2.3")
    with engine.connect() as conn:
        got = {t.site_id: t.ethernet for t in read_site_tunnels(conn)}
    assert got == {
        bare: None,
        ovs.id: EthernetFraming(local=gateway_mac_of(ovs.id), peer="aa:bb:cc:00:00:01"),
        lab: None,
    }
    framing = got[ovs.id]
    assert framing is not None
    assert framing.local == ovs.gateway_mac  # what the API shows the site's operator
