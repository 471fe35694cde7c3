"""Interop with an independent Geneve implementation: Open vSwitch (userspace datapath)
as a site that enforces by ztsim's policy class option.

ztsim's endpoint and TUN pump play the gateway; OVS maps the class option to
`tun_metadata0` (`ovs-ofctl add-tlv-map`), forwards to the site's service only what
carries the allowed (generation, class), and drops the rest with a rule of its own,
whose counter is read with `ovs-ofctl dump-flows`. OVS's userspace Geneve takes only
Ethernet inside (Protocol Type 0x6558), so the gateway's site uses `EthernetFraming`;
the first test shows what OVS does with bare IP. The last builds nothing by hand on the
gateway: the site is created through the store with inner ethernet, and the gateway's
`Tunnels.apply(read_site_tunnels(conn))` carries it, as the net role does.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import Engine

from ztsim.identity import repository as identities
from ztsim.net.endpoint import Endpoint, Site
from ztsim.net.geneve import (
    ETHERNET_HEADER_LENGTH,
    PROTOCOL_ETHERNET,
    PROTOCOL_IPV4,
    EthernetFraming,
    GeneveOption,
    header_bytes,
)
from ztsim.net.identity_option import OPTION_CLASS, TYPE_IDENTITY, ClassTag, Subject
from ztsim.net.serve.tunnels import Tunnels
from ztsim.net.sites import Inner, TunnelKind
from ztsim.net.store import sites
from ztsim.net.store.tunnel_view import read_site_tunnels
from ztsim.net.tun import TunnelPump, open_tun, overhead, udp_socket
from ztsim.net.tunnel_routes import TunnelRoutes

from support.net_ovs import (
    COOKIE_ALLOW,
    COOKIE_DROP,
    COOKIE_RETURN,
    GATEWAY_MAC,
    GW_UNDERLAY,
    SERVICE,
    SITE_UNDERLAY,
    OvsSite,
    ovs_unusable,
    tag_value,
    tlv_map,
)
from support.netns_hosts import entered, ip
from tests_clock import NOW

pytestmark = pytest.mark.skipif(bool(ovs_unusable()), reason=ovs_unusable() or "-")

VNI = 4242
ALLOWED = ClassTag(7, 3)
IDENTITY = "0123456789abcdef0123456789abcdef"
SUBJECTS = {
    "10.45.0.7": Subject(ALLOWED, IDENTITY),  # the class the site lets in
    "10.45.0.8": Subject(ClassTag(7, 4)),  # another class, same generation
    "10.45.0.9": Subject(ClassTag(6, 3)),  # the same number in an older generation
}
UE_ALLOWED, UE_OTHER, UE_STALE = SUBJECTS
HTTP_PORT, UDP_PORT = 8080, 9999
_LOOKUP = {ipaddress.ip_address(a).packed: s for a, s in SUBJECTS.items()}
_QUIET = 0.5  # seconds a probe is given to arrive when it should not


@dataclass
class World:
    site: OvsSite
    pump: TunnelPump
    probe: socket.socket  # the service's UDP port, in the service's namespace
    sender: socket.socket  # a second socket on the gateway's underlay, for crafted datagrams
    framing: EthernetFraming


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello {self.client_address[0]}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads the answer, not the log."""


class _Server(HTTPServer):
    def server_bind(self) -> None:
        """Bound without HTTPServer's reverse lookup of its address (no DNS in here)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "site", HTTP_PORT


def _gateway_pump(site: OvsSite, framing: EthernetFraming) -> TunnelPump:
    engine = Endpoint(
        [Site("ovs", VNI, SITE_UNDERLAY, ethernet=framing)],
        TunnelRoutes([("10.20.0.0/16", "ovs")]),
        _LOOKUP.get,
    )
    name = f"{site.tag}t"
    with entered(site.gw_ns):
        fd = open_tun(name)
        try:
            sock = udp_socket(GW_UNDERLAY)
        except BaseException:
            os.close(fd)
            raise
    pump = TunnelPump(engine, fd, sock)
    try:
        # The frame inside costs 14 octets more than bare IP.
        mtu = 1500 - overhead(32) - ETHERNET_HEADER_LENGTH
        ip("-n", site.gw_ns, "link", "set", name, "mtu", str(mtu), "up")
        for address in SUBJECTS:
            ip("-n", site.gw_ns, "addr", "add", f"{address}/32", "dev", "lo")
        ip("-n", site.gw_ns, "route", "add", "10.20.0.0/16", "dev", name)
    except BaseException:
        pump.stop()
        raise
    return pump


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with contextlib.ExitStack() as stack:
        site = stack.enter_context(OvsSite(VNI, ALLOWED))
        framing = EthernetFraming(local=GATEWAY_MAC, peer=site.service_mac)
        pump = _gateway_pump(site, framing)
        stack.callback(pump.stop)
        pump.start()
        with entered(site.svc_ns):
            probe = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            server = _Server((SERVICE, HTTP_PORT), _Hello)
        probe.bind((SERVICE, UDP_PORT))
        stack.callback(server.server_close)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        stack.callback(thread.join, 5)
        stack.callback(server.shutdown)
        with entered(site.gw_ns):
            sender = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        sender.bind((GW_UNDERLAY, 0))
        yield World(site, pump, probe, sender, framing)


def _received(probe: socket.socket, wait: float, expected: int | None = None) -> list[bytes]:
    """What reached the service's UDP port within `wait` seconds (sooner once
    `expected` datagrams are in)."""
    got: list[bytes] = []
    deadline = time.monotonic() + wait
    while len(got) != expected and (left := deadline - time.monotonic()) > 0:
        probe.settimeout(left)
        try:
            got.append(probe.recv(2048))
        except TimeoutError:
            break
    return got


def _ipv4_udp(source: str, destination: str, port: int, payload: bytes) -> bytes:
    """An IPv4/UDP packet (RFC 791, RFC 768) with its header checksum; the UDP checksum
    0, "not computed", which IPv4 allows (RFC 768)."""
    udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
    addresses = socket.inet_aton(source) + socket.inet_aton(destination)
    # Version 4 with five words of header, length, TTL 64, protocol 17 (UDP).
    header = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0) + addresses
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return header[:10] + struct.pack("!H", ~total & 0xFFFF) + header[12:] + udp


_IP_MTU_DISCOVER, _IP_PMTUDISC_DO = 10, 2  # linux/in.h: DF set, never fragmented here


def _udp_from(world: World | OvsSite, source: str, payload: bytes, *, df: bool = False) -> None:
    """A datagram from a UE address: the kernel routes it into the TUN device (with `df`,
    a datagram over the route's MTU is refused here: OSError EMSGSIZE)."""
    site = world.site if isinstance(world, World) else world
    with entered(site.gw_ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        if df:
            sock.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, _IP_PMTUDISC_DO)
        sock.bind((source, 0))
        sock.sendto(payload, (SERVICE, UDP_PORT))


def _get(ns: str, source: str, timeout: float) -> bytes:
    with entered(ns):
        conn = socket.create_connection(
            (SERVICE, HTTP_PORT), timeout=timeout, source_address=(source, 0)
        )
    with conn:
        conn.sendall(b"GET / HTTP/1.0\r\nHost: site\r\n\r\n")
        chunks = []
        while chunk := conn.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


def test_ovs_takes_ethernet_inside_only(world: World) -> None:
    """Why the site needs EthernetFraming: bare IP inside is refused by OVS 3.x's
    userspace Geneve (netdev_geneve_pop_header), with the allowed class or not."""
    site = world.site
    packet = _ipv4_udp(UE_ALLOWED, SERVICE, UDP_PORT, b"bare")
    # ztsim's endpoint with a site of the default kind, and its options added by hand.
    bare = Endpoint([Site("ovs", VNI, SITE_UNDERLAY)], TunnelRoutes([("10.20.0.0/16", "ovs")]))
    [(address, datagram)] = bare.outbound(packet, 0.0)
    with_class = header_bytes(VNI, PROTOCOL_IPV4, SUBJECTS[UE_ALLOWED].options()) + packet
    for each in (datagram, with_class):
        world.sender.sendto(each, address)
    assert _received(world.probe, _QUIET) == []
    # OVS says why: a rate-limited warning, and a coverage counter (both summed up
    # by its main loop, so they are waited for).
    deadline = time.monotonic() + 5
    while not (
        "unknown geneve encapsulated protocol: 0x800" in site.vswitchd_log()
        and "datapath_drop_tunnel_pop_error" in site.appctl("coverage/show")
    ):
        assert time.monotonic() < deadline, site.vswitchd_log()[-2000:]
        time.sleep(0.1)


def test_the_allowed_class_gets_http_through_ovs_and_back(world: World) -> None:
    site = world.site
    answer = _get(site.gw_ns, UE_ALLOWED, timeout=5)
    assert answer.startswith(b"HTTP/1.0 200"), answer
    assert answer.endswith(f"hello {UE_ALLOWED}".encode())
    assert site.packets_reaching(COOKIE_ALLOW, 1) >= 1  # OVS's rule for the class
    assert site.packets_reaching(COOKIE_RETURN, 1) >= 1  # the answers, without options
    engine = world.pump.engine
    assert engine.received > 0
    assert not engine.drops, engine.drops
    _udp_from(world, UE_ALLOWED, b"allowed")
    assert _received(world.probe, 2, expected=1) == [b"allowed"]


def test_other_classes_are_dropped_by_ovs_and_counted(world: World) -> None:
    site = world.site
    allowed, dropped = site.settled_packets(COOKIE_ALLOW), site.settled_packets(COOKIE_DROP)
    for n in range(3):
        _udp_from(world, UE_OTHER, b"other %d" % n)
        _udp_from(world, UE_STALE, b"stale %d" % n)
    assert _received(world.probe, _QUIET) == []
    assert site.packets_reaching(COOKIE_DROP, dropped + 6) == dropped + 6
    assert site.settled_packets(COOKIE_DROP) == dropped + 6
    assert site.flow_packets(COOKIE_ALLOW) == allowed
    assert world.pump.engine.sent >= 6  # ztsim sent them: OVS refused them
    # TCP too: the handshake never gets an answer (one SYN within the timeout).
    with pytest.raises(TimeoutError):
        _get(site.gw_ns, UE_OTHER, timeout=0.8)
    assert site.packets_reaching(COOKIE_DROP, dropped + 7) >= dropped + 7


def test_a_packet_without_the_class_option_is_dropped(world: World) -> None:
    site = world.site
    dropped = site.settled_packets(COOKIE_DROP)
    frame = world.framing.header(PROTOCOL_IPV4)
    identity_only = (GeneveOption(OPTION_CLASS, TYPE_IDENTITY, bytes.fromhex(IDENTITY)),)
    sent = {
        b"none": header_bytes(VNI, PROTOCOL_ETHERNET),
        b"identity": header_bytes(VNI, PROTOCOL_ETHERNET, identity_only),
        b"class": header_bytes(VNI, PROTOCOL_ETHERNET, SUBJECTS[UE_ALLOWED].options()),
    }
    for payload, header in sent.items():
        packet = _ipv4_udp(UE_ALLOWED, SERVICE, UDP_PORT, payload)
        world.sender.sendto(header + frame + packet, (SITE_UNDERLAY, 6081))
    # The crafted datagram with the class is the control: the way they were sent works.
    assert _received(world.probe, 2, expected=1) == [b"class"]
    assert site.packets_reaching(COOKIE_DROP, dropped + 2) == dropped + 2


def test_the_site_rules_are_the_documented_ones(world: World) -> None:
    """The tlv-map line and the match docs/net.md gives a site operator."""
    assert tlv_map() == "{class=0xff5a,type=0x81,len=8}->tun_metadata0"
    assert "0xff5a" in world.site.ofctl("dump-tlv-map", "brint")
    rule = world.site.ofctl("dump-flows", "brint", f"cookie={COOKIE_ALLOW:#x}/-1")
    assert f"tun_metadata0={int(tag_value(ALLOWED), 16):#x}" in rule


def _frame_with(frames: socket.socket, marker: bytes, wait: float) -> bytes:
    """The first frame on the service's link that carries `marker` (within `wait` s)."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        frames.settimeout(left)
        try:
            frame = frames.recv(4096)
        except TimeoutError:
            break
        if marker in frame:
            return frame
    raise AssertionError(f"no frame with {marker!r} within {wait} s")


def test_a_site_made_through_the_store_is_carried_by_the_gateways_tunnels(
    sqlite_engine: Engine,
) -> None:
    """The admin's path end to end: the site created with inner ethernet and the MAC of
    the service behind it, ztsim's MAC from the answer pinned at the site, the gateway's
    tunnels applied from the database (a TUN device, ztsim's endpoint, the route) with
    no hand-built engine; the largest packet the route's MTU lets through fills the
    underlay's 1500 octets exactly."""
    with contextlib.ExitStack() as stack:
        site = stack.enter_context(OvsSite(VNI, ALLOWED))
        with sqlite_engine.begin() as conn:
            org = identities.create_org(conn, "Acme", "acme", NOW).id
            made = sites.create_site(
                conn,
                org,
                name="ovs",
                tunnel=TunnelKind.GENEVE,
                endpoint=SITE_UNDERLAY,
                vni=VNI,
                inner=Inner.ETHERNET,
                site_mac=site.service_mac,
                actor="t",
                now=NOW,
            )
            sites.add_network(
                conn, org, made.id, name="svc", cidr="10.20.0.0/16", actor="t", now=NOW
            )
        assert made.gateway_mac not in (None, GATEWAY_MAC)  # derived, not the fixture's
        site.pin_gateway_mac(str(made.gateway_mac))
        for address in SUBJECTS:
            ip("-n", site.gw_ns, "addr", "add", f"{address}/32", "dev", "lo")
        tunnels = Tunnels(GW_UNDERLAY, _LOOKUP.get, ("ip", "netns", "exec", site.gw_ns))
        stack.callback(tunnels.close)
        stack.callback(tunnels.apply, [])  # first: the device and its route go
        with sqlite_engine.connect() as conn:
            carried = read_site_tunnels(conn)
        assert [t.ethernet for t in carried] == [
            EthernetFraming(local=str(made.gateway_mac), peer=site.service_mac)
        ]
        tunnels.apply(carried)
        assert tunnels.pump is not None
        [route] = [
            r
            for r in json.loads(ip("-n", site.gw_ns, "-j", "route", "show"))
            if r["dst"] == "10.20.0.0/16"
        ]
        assert (route["dev"], route["metrics"]) == ("ztg0", [{"mtu": 1418}])

        with entered(site.svc_ns):
            probe = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            server = _Server((SERVICE, HTTP_PORT), _Hello)
        probe.bind((SERVICE, UDP_PORT))
        stack.callback(server.server_close)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        stack.callback(thread.join, 5)
        stack.callback(server.shutdown)

        # There and back: OVS lets the class in, the answers come back framed to ztsim.
        answer = _get(site.gw_ns, UE_ALLOWED, timeout=5)
        assert answer.endswith(f"hello {UE_ALLOWED}".encode()), answer
        # The frames' addresses are the site's: from ztsim's MAC to the service's.
        frames = stack.enter_context(site.frames_to_service())
        largest = b"L" * (1418 - 28)  # IPv4 and UDP headers: a packet of the route's MTU
        _udp_from(site, UE_ALLOWED, largest, df=True)
        frame = _frame_with(frames, largest, 2)
        assert (frame[:6].hex(":"), frame[6:12].hex(":")) == (site.service_mac, made.gateway_mac)
        # The whole packet: on the underlay it took 20 + 8 + 40 (Geneve with both
        # options) + 14 + 1418 = 1500 octets, the underlay's MTU.
        assert len(frame) == 14 + 1418
        assert _received(probe, 2, expected=1) == [largest]
        with pytest.raises(OSError, match="Message too long"):  # EMSGSIZE at the UE's side
            _udp_from(site, UE_ALLOWED, largest + b"!", df=True)
        # Another class: ztsim carries it, OVS drops it by its own rule.
        dropped = site.settled_packets(COOKIE_DROP)
        _udp_from(site, UE_OTHER, b"other")
        assert _received(probe, _QUIET) == []
        assert site.packets_reaching(COOKIE_DROP, dropped + 1) == dropped + 1
        engine = tunnels.pump.engine
        assert engine.received > 0
        assert not engine.drops, engine.drops
