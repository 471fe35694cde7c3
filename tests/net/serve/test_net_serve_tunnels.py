"""The gateway's tunnels for real, in namespaces: from a UE, each site's prefix reaches
its site through its tunnel (Geneve through ztsim's endpoint, carrying the class the
`subjects` callable gave, as tshark reads it on the gateway's underlay; VXLAN through
the kernel); a second `apply` changes nothing; a new prefix of a Geneve site swaps the
endpoint's engine in place; a site removed takes its routes and device; a Geneve site with
Ethernet inside gets its frames from the engine and its routes an MTU 14 octets lower. And
the readers of `ip -j`, and the errors, with the tool's message."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import time
from collections.abc import Iterator
from ipaddress import ip_network
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.net.geneve import (
    ETHERNET_HEADER_LENGTH,
    PROTOCOL_ETHERNET,
    PROTOCOL_IPV4,
    EthernetFraming,
    decode,
)
from ztsim.net.identity_option import (
    OPTION_CLASS,
    TYPE_IDENTITY,
    TYPE_POLICY_CLASS,
    ClassTag,
    Subject,
)
from ztsim.net.serve.tunnels import TunnelError, Tunnels, links_of, routes_of, underlay_mtu
from ztsim.net.sites import TunnelKind
from ztsim.net.store.tunnel_view import SiteTunnel
from ztsim.net.tunnel_state import Link, Route

from support.net_capture import GENEVE_FIELDS, TSHARK, capture_first
from support.net_tunnel_world import (
    GENEVE_AT,
    GENEVE_VNI,
    GW,
    UE,
    VXLAN_AT,
    VXLAN_VNI,
    World,
)
from support.netns_hosts import entered, ip, netns_unusable

SUBJECT = Subject(ClassTag(3, 12), "0123456789abcdef0123456789abcdef")
UE_RAW = ipaddress.ip_address(UE).packed

needs_netns = pytest.mark.skipif(
    bool(netns_unusable()) or not os.path.exists("/dev/net/tun"),
    reason=netns_unusable() or "needs /dev/net/tun",
)


def _site(vni: int, kind: TunnelKind, endpoint: str, *cidrs: str) -> SiteTunnel:
    port = 6081 if kind is TunnelKind.GENEVE else 4789
    prefixes = tuple(ip_network(c) for c in cidrs)
    endpoint_address = ipaddress.ip_address(endpoint)
    return SiteTunnel(f"s{vni}", "org", f"site {vni}", kind, endpoint_address, port, vni, prefixes)


HQ = _site(GENEVE_VNI, TunnelKind.GENEVE, GENEVE_AT, "10.30.0.0/24")
LAB = _site(VXLAN_VNI, TunnelKind.VXLAN, VXLAN_AT, "10.40.0.0/24")


@pytest.fixture
def world() -> Iterator[World]:
    made = World()
    try:
        yield made.open()
    finally:
        made.close()


def _snapshot(ns: str) -> tuple[dict[str, tuple[int, int]], list[Any]]:
    """Our devices (ifindex, MTU) and every route of the gateway."""
    links = json.loads(ip("-n", ns, "-j", "link", "show"))
    ours = {
        str(link["ifname"]): (int(link["ifindex"]), int(link["mtu"]))
        for link in links
        if str(link["ifname"]).startswith(("ztv", "ztg"))
    }
    return ours, json.loads(ip("-n", ns, "-j", "route", "show"))


def _timed(world: World, address: str) -> tuple[str, float]:
    started = time.perf_counter()
    answer = world.ask(address)
    return answer, time.perf_counter() - started


@needs_netns
def test_each_prefix_reaches_its_site_through_its_tunnel(world: World) -> None:
    gw = world.ns("gw")
    tunnels = Tunnels(
        GW, lambda raw: SUBJECT if raw == UE_RAW else None, ("ip", "netns", "exec", gw)
    )
    try:
        started = time.perf_counter()
        tunnels.apply([LAB, HQ])
        first = time.perf_counter() - started
        assert tunnels.pump is not None
        geneve = capture_first(gw, 6081, GW, GENEVE_FIELDS) if TSHARK else None
        answer, took = _timed(world, "10.30.0.5")
        assert answer == f"geneve-site {UE}"  # no address translation on the way
        vxlan = capture_first(gw, 4789, GW, ["vxlan.vni"]) if TSHARK else None
        answer, took_vxlan = _timed(world, "10.40.0.5")
        assert answer == f"vxlan-site {UE}"
        print(f"first connection: geneve {took * 1e3:.1f} ms, vxlan {took_vxlan * 1e3:.1f} ms")
        if geneve is not None and vxlan is not None:
            out, err = geneve.communicate(timeout=15)
            vni, classes, types, data = out.strip().split("|")
            assert int(vni, 0) == GENEVE_VNI, err
            assert [int(c, 0) for c in classes.split(",")] == [OPTION_CLASS] * 2
            assert [int(t, 0) for t in types.split(",")] == [TYPE_POLICY_CLASS, TYPE_IDENTITY]
            # generation 3, class 12: the subject the callable gave for the UE's address.
            assert data.split(",") == ["000000030000000c", SUBJECT.identity]
            out, err = vxlan.communicate(timeout=15)
            assert int(out.strip(), 0) == VXLAN_VNI, err
        engine = tunnels.pump.engine
        assert engine.sent > 0
        assert engine.received > 0
        # Only the device's own IPv6 chatter (router solicitations) goes nowhere.
        assert set(engine.drops) <= {"no_route"}

        # Again: nothing is made, remade or swapped.
        before, pump = _snapshot(gw), tunnels.pump
        started = time.perf_counter()
        tunnels.apply([LAB, HQ])
        print(
            f"apply: first {first * 1e3:.0f} ms, again {(time.perf_counter() - started) * 1e3:.0f} ms"
        )
        assert _snapshot(gw) == before
        assert (tunnels.pump, tunnels.pump.engine) == (pump, engine)
        assert before[0] == {
            "ztg0": (before[0]["ztg0"][0], 1432),
            f"ztv{VXLAN_VNI}": (before[0][f"ztv{VXLAN_VNI}"][0], 1450),
        }

        # A new prefix of the Geneve site: the same device, a new engine, counters kept.
        sent = engine.sent
        wider = _site(GENEVE_VNI, TunnelKind.GENEVE, GENEVE_AT, "10.30.0.0/24", "10.31.0.0/24")
        tunnels.apply([LAB, wider])
        assert tunnels.pump is pump
        assert pump.engine is not engine
        assert pump.engine.sent == sent  # carried over: swap returns once it is taken
        assert world.ask("10.31.0.5") == f"geneve-site {UE}"
        assert pump.engine is not engine
        assert pump.engine.sent > sent

        # The VXLAN site goes: its device and route with it; the Geneve site stays.
        tunnels.apply([wider])
        links, routes = _snapshot(gw)
        assert set(links) == {"ztg0"}
        assert not [r for r in routes if r["dst"] == "10.40.0.0/24"]
        with pytest.raises(OSError, match="unreachable"):
            world.ask("10.40.0.5", timeout=2)
        assert world.ask("10.30.0.5") == f"geneve-site {UE}"

        tunnels.apply([])
        links, routes = _snapshot(gw)
        assert links == {}
        assert {r["dev"] for r in routes} == {"u0", "ue0"}
        assert tunnels.pump is None
    finally:
        tunnels.apply([])
        tunnels.close()


def _our_routes(ns: str) -> dict[str, Any]:
    return {r["dst"]: r for r in _snapshot(ns)[1] if str(r.get("dev", "")).startswith("zt")}


def _ue_packet(destination: str) -> bytes:
    """An IPv4 header from the UE (RFC 791), protocol 253 (RFC 3692: experiments), empty:
    the engine routes by the addresses alone."""
    addresses = ipaddress.ip_address(UE).packed + ipaddress.ip_address(destination).packed
    return bytes.fromhex("4500001400004000" + "40fd0000") + addresses


_IP_MTU_DISCOVER, _IP_PMTUDISC_DO = 10, 2  # linux/in.h: set DF, never fragment locally


def _send_with_df(ns: str, destination: str, size: int) -> None:
    """One IPv4 packet of `size` octets (UDP: 28 of them headers) from a socket in `ns`,
    DF set: the kernel refuses it at once (EMSGSIZE) when it is over the route's MTU."""
    with entered(ns):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with probe:
        probe.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, _IP_PMTUDISC_DO)
        probe.sendto(b"\0" * (size - 28), (destination, 9))


@needs_netns
def test_an_ethernet_site_is_framed_and_only_its_routes_are_narrower(world: World) -> None:
    gw = world.ns("gw")
    framing = EthernetFraming("02:5a:00:00:00:09", "aa:bb:cc:00:00:01")
    prefixes = (ip_network("10.30.0.0/24"),)
    framed = SiteTunnel(
        "s-ovs", "org", "ovs", TunnelKind.GENEVE, ipaddress.ip_address(GENEVE_AT), 6081,
        GENEVE_VNI, prefixes, framing,
    )  # fmt: skip
    tunnels = Tunnels(
        GW, lambda raw: SUBJECT if raw == UE_RAW else None, ("ip", "netns", "exec", gw)
    )
    try:
        tunnels.apply([LAB, framed])
        routes = _our_routes(gw)
        assert routes["10.30.0.0/24"]["metrics"] == [{"mtu": 1418}]  # 1432 - 14
        assert "metrics" not in routes["10.40.0.0/24"]
        links = _snapshot(gw)[0]
        assert (links["ztg0"][1], links[f"ztv{VXLAN_VNI}"][1]) == (1432, 1450)
        assert tunnels.pump is not None
        [(to, datagram)] = tunnels.pump.engine.outbound(_ue_packet("10.30.0.5"), 0.0)
        header, inner = decode(datagram)
        assert (to, header.vni) == ((GENEVE_AT, 6081), GENEVE_VNI)
        assert header.protocol == PROTOCOL_ETHERNET  # 0x6558, then the frame
        assert inner[:ETHERNET_HEADER_LENGTH] == framing.header(PROTOCOL_IPV4)
        assert inner[ETHERNET_HEADER_LENGTH:] == _ue_packet("10.30.0.5")
        # The kernel holds the route's MTU: one octet over it is refused at the sender.
        _send_with_df(gw, "10.30.0.5", 1418)
        with pytest.raises(OSError, match="Message too long"):  # EMSGSIZE
            _send_with_df(gw, "10.30.0.5", 1419)
        before = _snapshot(gw)
        tunnels.apply([LAB, framed])
        assert _snapshot(gw) == before
        # Bare IP again: the same route, its MTU gone (the device's again), in place.
        tunnels.apply([LAB, HQ])
        routes = _our_routes(gw)
        assert "metrics" not in routes["10.30.0.0/24"]
        [(to, datagram)] = tunnels.pump.engine.outbound(_ue_packet("10.30.0.5"), 0.0)
        assert decode(datagram)[0].protocol == PROTOCOL_IPV4
    finally:
        tunnels.apply([])
        tunnels.close()


@needs_netns
def test_a_failure_is_a_tunnel_error_with_the_tools_message(world: World) -> None:
    gw = world.ns("gw")
    with pytest.raises(TunnelError, match="on no device"):
        Tunnels("198.18.0.9", lambda raw: None, ("ip", "netns", "exec", gw)).apply([HQ])
    with pytest.raises(TunnelError, match="Cannot open network namespace"):
        Tunnels(GW, lambda raw: None, ("ip", "netns", "exec", f"{gw}-none")).apply([HQ])
    # A device of that name already there, not a TUN: opening ours says so.
    ip("-n", gw, "link", "add", "ztg0", "type", "veth", "peer", "name", "x0")
    tunnels = Tunnels(GW, lambda raw: None, ("ip", "netns", "exec", gw))
    try:
        with pytest.raises(TunnelError, match="could not open the Geneve endpoint ztg0"):
            tunnels.apply([HQ])
        assert tunnels.pump is None
    finally:
        tunnels.close()


# -- the readers of `ip -j` ----------------------------------------------------------------


def test_the_readers_take_ours_and_leave_the_rest() -> None:
    listing = [
        {"ifname": "lo", "mtu": 65536, "flags": ["LOOPBACK", "UP"], "addr_info": []},
        {
            "ifname": "ztv9",
            "mtu": 1450,
            "flags": ["BROADCAST", "UP"],
            "linkinfo": {
                "info_kind": "vxlan",
                "info_data": {"id": 9, "remote": "198.18.0.3", "local": GW, "port": 4789},
            },
            "addr_info": [{"family": "inet6", "local": "fe80::1"}],
        },
        {"ifname": "ztg0", "mtu": 1500, "flags": [], "linkinfo": {"info_kind": "tun"}},
        {"ifname": "u0", "mtu": 9000, "addr_info": [{"family": "inet", "local": GW}]},
    ]
    assert links_of(listing) == {
        "ztv9": Link("ztv9", "vxlan", 1450, True, 9, "198.18.0.3", GW, 4789),
        "ztg0": Link("ztg0", "tun", 1500, False),
    }
    assert underlay_mtu(listing, GW) == 9000
    assert underlay_mtu(listing, "198.18.0.7") is None
    routes: list[dict[str, Any]] = [
        {"dst": "10.30.0.0/24", "dev": "ztg0"},
        {"dst": "10.50.0.0/24", "dev": "ztg0", "metrics": [{"mtu": 1418}]},
        {"dst": "10.51.0.0/24", "dev": "ztg0", "metrics": [{"hoplimit": 9}, {"mtu": "x"}]},
        {"dst": "10.30.1.5", "dev": "ztv9"},
        {"dst": "default", "dev": "ztv9"},
        {"dst": "10.9.0.0/16", "dev": "u0"},
        {"dst": "fe80::/64", "dev": "ztg0", "protocol": "kernel"},
        {"dst": "10.8.0.0/16", "dev": "ztg0", "type": "blackhole"},
    ]
    assert routes_of(routes, 4) == {
        Route(ip_network("10.30.0.0/24"), "ztg0"),
        Route(ip_network("10.50.0.0/24"), "ztg0", 1418),  # a route with an MTU of its own
        Route(ip_network("10.51.0.0/24"), "ztg0"),
        Route(ip_network("10.30.1.5/32"), "ztv9"),
        Route(ip_network("0.0.0.0/0"), "ztv9"),
    }


_SCALAR = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
_JSON = _SCALAR | st.lists(_SCALAR, max_size=3) | st.dictionaries(st.text(max_size=8), _SCALAR)
_LINKINFO = st.fixed_dictionaries({"info_kind": _SCALAR, "info_data": _JSON})
_ITEM = st.fixed_dictionaries(
    {},
    optional={
        "ifname": st.sampled_from(["ztv1", "ztg0", "eth0"]) | st.integers(),
        "dst": st.sampled_from(["default", "10.0.0.0/8", "::1", "x"]) | _JSON,
        "dev": st.sampled_from(["ztv1", "ztg0"]) | _JSON,
        "mtu": _JSON,
        "flags": _JSON,
        "metrics": _JSON | st.lists(_JSON, max_size=2),
        "linkinfo": _JSON | _LINKINFO,
        "addr_info": st.lists(_JSON, max_size=3),
    },
)


@given(st.lists(_ITEM, max_size=6))
def test_the_readers_never_raise_on_odd_output(listing: list[dict[str, Any]]) -> None:
    links_of(listing)
    routes_of(listing, 4)
    routes_of(listing, 6)
    underlay_mtu(listing, GW)
