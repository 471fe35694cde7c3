"""The tunnel engine: a gateway and a site endpoint talking to each other in memory."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.net import endpoint as ep
from ztsim.net.endpoint import Delivered, Dropped, Endpoint, Site
from ztsim.net.geneve import (
    PROTOCOL_ETHERNET,
    PROTOCOL_IPV4,
    PROTOCOL_IPV6,
    EthernetFraming,
    GeneveError,
    GeneveHeader,
    GeneveOption,
    decode,
    header_bytes,
)
from ztsim.net.identity_option import OPTION_CLASS, TYPE_POLICY_CLASS, ClassTag, Subject
from ztsim.net.tunnel_routes import TunnelRoutes

GATEWAY, SITE = "192.0.2.1", "192.0.2.2"
UE, UE_UNKNOWN, SERVER = "10.45.0.7", "10.45.0.8", "10.20.0.5"
IDENTITY = "f" * 32
SUBJECT = Subject(ClassTag(3, 12), IDENTITY)
VNI = 0x00BEEF


def ipv4(source: str, destination: str, payload: bytes = b"hello") -> bytes:
    """A minimal IPv4 packet (the engine reads only version and addresses)."""
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        0,
        0,
        64,
        17,
        0,
        ipaddress.IPv4Address(source).packed,
        ipaddress.IPv4Address(destination).packed,
    )
    return header + payload


def ipv6(source: str, destination: str, payload: bytes = b"hello") -> bytes:
    head = struct.pack("!IHBB", 6 << 28, len(payload), 17, 64)
    return (
        head
        + ipaddress.IPv6Address(source).packed
        + ipaddress.IPv6Address(destination).packed
        + payload
    )


def subjects(raw: bytes) -> Subject | None:
    return (
        SUBJECT
        if raw in (ipaddress.ip_address(UE).packed, ipaddress.ip_address("fd45::7").packed)
        else None
    )


def gateway(with_identity: bool = True) -> Endpoint:
    routes = TunnelRoutes([("10.20.0.0/16", "hq"), ("fd20::/48", "hq")])
    return Endpoint([Site("hq", VNI, SITE)], routes, subjects, with_identity=with_identity)


def site_side() -> Endpoint:
    routes = TunnelRoutes([("10.45.0.0/16", "gw"), ("fd45::/48", "gw")])
    return Endpoint([Site("gw", VNI, GATEWAY)], routes)


def test_a_packet_to_a_site_prefix_goes_to_the_site_with_the_subject() -> None:
    gw = gateway()
    packet = ipv4(UE, SERVER)
    [(address, datagram)] = gw.outbound(packet, 0.0)
    assert address == (SITE, 6081)
    header, payload = decode(datagram)
    assert header == GeneveHeader(VNI, PROTOCOL_IPV4, SUBJECT.options())
    assert payload == packet
    assert gw.sent == 1


def test_the_site_reads_the_packet_and_its_subject() -> None:
    [(_, datagram)] = gateway().outbound(ipv4(UE, SERVER), 0.0)
    site = site_side()
    result = site.inbound(datagram, (GATEWAY, 40123), 5.0)
    assert isinstance(result, Delivered)
    assert bytes(result.packet) == ipv4(UE, SERVER)
    assert result.subject == SUBJECT
    assert result.site.name == "gw"
    assert site.last_heard == {"gw": 5.0}


def test_return_traffic_carries_no_options_and_the_gateway_takes_it() -> None:
    site = site_side()
    [(address, datagram)] = site.outbound(ipv4(SERVER, UE), 0.0)
    assert address == (GATEWAY, 6081)
    assert decode(datagram)[0].options == ()
    result = gateway().inbound(datagram, (SITE, 6081), 0.0)
    assert isinstance(result, Delivered)
    assert result.subject is None


def test_ipv6_goes_through_too() -> None:
    [(_, datagram)] = gateway().outbound(ipv6("fd45::7", "fd20::5"), 0.0)
    assert decode(datagram)[0].protocol == PROTOCOL_IPV6
    result = site_side().inbound(datagram, (GATEWAY, 6081), 0.0)
    assert isinstance(result, Delivered)
    assert bytes(result.packet) == ipv6("fd45::7", "fd20::5")


def test_the_identity_can_stay_off_the_wire() -> None:
    [(_, datagram)] = gateway(with_identity=False).outbound(ipv4(UE, SERVER), 0.0)
    result = site_side().inbound(datagram, (GATEWAY, 6081), 0.0)
    assert isinstance(result, Delivered)
    assert result.subject == Subject(SUBJECT.tag)


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (b"", ep.NOT_IP),
        (b"\x45" + bytes(10), ep.NOT_IP),
        (b"\x25" + bytes(40), ep.NOT_IP),
        (ipv4(UE, "10.99.0.1"), ep.NO_ROUTE),
        (ipv4(UE_UNKNOWN, SERVER), ep.UNKNOWN_SOURCE),
    ],
)
def test_outbound_drops_are_counted(packet: bytes, reason: str) -> None:
    gw = gateway()
    assert gw.outbound(packet, 0.0) == []
    assert gw.drops == {reason: 1}
    assert gw.sent == 0


def _datagram(header: bytes, inner: bytes | None = None) -> bytes:
    return header + (ipv4(UE, SERVER) if inner is None else inner)


@pytest.mark.parametrize(
    ("datagram", "source", "reason"),
    [
        (_datagram(header_bytes(VNI, PROTOCOL_IPV4)), "192.0.2.99", ep.UNKNOWN_PEER),
        (b"\x00\x00\x08", GATEWAY, ep.MALFORMED),
        (b"\x40" + _datagram(header_bytes(VNI, PROTOCOL_IPV4))[1:], GATEWAY, ep.MALFORMED),
        (_datagram(header_bytes(VNI + 1, PROTOCOL_IPV4)), GATEWAY, ep.WRONG_VNI),
        (_datagram(GeneveHeader(VNI, PROTOCOL_IPV4, oam=True).to_wire()), GATEWAY, ep.OAM),
        (_datagram(header_bytes(VNI, PROTOCOL_ETHERNET)), GATEWAY, ep.WRONG_PROTOCOL),
        (_datagram(header_bytes(VNI, PROTOCOL_IPV6)), GATEWAY, ep.WRONG_PROTOCOL),
        (
            _datagram(header_bytes(VNI, PROTOCOL_IPV4, (GeneveOption(0x0101, 0x80),))),
            GATEWAY,
            ep.UNKNOWN_CRITICAL_OPTION,
        ),
        (
            _datagram(header_bytes(VNI, PROTOCOL_IPV4, (GeneveOption(OPTION_CLASS, 0x85),))),
            GATEWAY,
            ep.UNKNOWN_CRITICAL_OPTION,
        ),
        (
            _datagram(
                header_bytes(
                    VNI, PROTOCOL_IPV4, (GeneveOption(OPTION_CLASS, TYPE_POLICY_CLASS, bytes(4)),)
                )
            ),
            GATEWAY,
            ep.MALFORMED,
        ),
        (
            bytes([0x01, 0x00, 0x08, 0x00, 0x00, 0xBE, 0xEF, 0x00, 0xFF, 0, 0x01, 0x05])
            + ipv4(UE, SERVER),
            GATEWAY,
            ep.MALFORMED,
        ),
        (
            # our policy class option, critical, with the C flag cleared
            bytes([0x03, 0x00, 0x08, 0x00, 0x00, 0xBE, 0xEF, 0x00, 0xFF, 0x5A, 0x81, 0x02])
            + bytes(8)
            + ipv4(UE, SERVER),
            GATEWAY,
            ep.MALFORMED,
        ),
        (_datagram(header_bytes(VNI, PROTOCOL_IPV4), b"\x45\x00"), GATEWAY, ep.MALFORMED_INNER),
        (_datagram(header_bytes(VNI, PROTOCOL_IPV4), b""), GATEWAY, ep.MALFORMED_INNER),
        (_datagram(header_bytes(VNI, PROTOCOL_IPV4), ipv4(SERVER, UE)), GATEWAY, ep.SPOOFED_SOURCE),
    ],
)
def test_inbound_drops_are_counted_never_raised(datagram: bytes, source: str, reason: str) -> None:
    site = site_side()
    assert site.inbound(datagram, (source, 6081), 0.0) == Dropped(reason)
    assert site.drops == {reason: 1}
    assert site.received == 0
    assert site.last_heard == {}


def test_an_unknown_option_that_is_not_critical_is_skipped() -> None:
    header = header_bytes(VNI, PROTOCOL_IPV4, (GeneveOption(0x0101, 0x05, bytes(4)),))
    result = site_side().inbound(_datagram(header), (GATEWAY, 6081), 0.0)
    assert isinstance(result, Delivered)
    assert result.subject is None


def test_sites_must_be_distinct_and_valid() -> None:
    routes = TunnelRoutes([])
    with pytest.raises(GeneveError):
        Endpoint([Site("a", 1, SITE), Site("a", 2, GATEWAY)], routes)
    with pytest.raises(GeneveError):
        Endpoint([Site("a", 1, SITE), Site("b", 2, SITE)], routes)
    bad: list[tuple[str, int, str, int]] = [
        ("", 1, SITE, 6081),
        ("a", 1 << 24, SITE, 6081),
        ("a", 1, "not-an-address", 6081),
        ("a", 1, SITE, 0),
    ]
    for name, vni, address, port in bad:
        with pytest.raises(GeneveError):
            Site(name, vni, address, port)


@given(st.binary(max_size=120))
def test_any_datagram_is_delivered_or_dropped(datagram: bytes) -> None:
    result = site_side().inbound(datagram, (GATEWAY, 6081), 0.0)
    assert isinstance(result, Delivered | Dropped)


@given(st.binary(max_size=80), st.binary(max_size=60))
def test_any_options_area_and_inner_packet_is_delivered_or_dropped(
    options: bytes, inner: bytes
) -> None:
    words = min(len(options) // 4, 63)
    head = bytes([words, 0x40, 0x08, 0x00, 0x00, 0xBE, 0xEF, 0x00])
    result = site_side().inbound(head + options[: 4 * words] + inner, (GATEWAY, 6081), 0.0)
    assert isinstance(result, Delivered | Dropped)


@given(st.binary(max_size=80))
def test_any_packet_from_the_tun_device_is_sent_or_dropped(packet: bytes) -> None:
    gw = gateway()
    sent = gw.outbound(packet, 0.0)
    assert len(sent) + sum(gw.drops.values()) == 1


def test_a_flows_repeated_options_are_read_once_and_judged_the_same() -> None:
    [(_, datagram)] = gateway().outbound(ipv4(UE, SERVER), 0.0)
    bad = _datagram(header_bytes(VNI, PROTOCOL_IPV4, (GeneveOption(0x0101, 0x80),)))
    site = site_side()
    for _ in range(3):
        result = site.inbound(datagram, (GATEWAY, 6081), 0.0)
        assert isinstance(result, Delivered)
        assert result.subject == SUBJECT
        assert site.inbound(bad, (GATEWAY, 6081), 0.0) == Dropped(ep.UNKNOWN_CRITICAL_OPTION)
    assert site.received == 3
    assert site.drops == {ep.UNKNOWN_CRITICAL_OPTION: 3}


# A site whose endpoint takes only Ethernet inside (Open vSwitch's userspace Geneve).
GATEWAY_MAC, SERVER_MAC = "02:5a:00:00:00:01", "0a:00:00:00:00:05"
FRAMING = EthernetFraming(local=GATEWAY_MAC, peer=SERVER_MAC)


def _mac_octets(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def ethernet_gateway() -> Endpoint:
    routes = TunnelRoutes([("10.20.0.0/16", "hq"), ("fd20::/48", "hq")])
    return Endpoint([Site("hq", VNI, SITE, ethernet=FRAMING)], routes, subjects)


def _frame(destination: str, source: str, ethertype: int, packet: bytes) -> bytes:
    return _mac_octets(destination) + _mac_octets(source) + struct.pack("!H", ethertype) + packet


@pytest.mark.parametrize(
    ("packet", "ethertype"),
    [(ipv4(UE, SERVER), PROTOCOL_IPV4), (ipv6("fd45::7", "fd20::5"), PROTOCOL_IPV6)],
)
def test_an_ethernet_site_gets_frames_with_its_addresses(packet: bytes, ethertype: int) -> None:
    [(address, datagram)] = ethernet_gateway().outbound(packet, 0.0)
    assert address == (SITE, 6081)
    header, payload = decode(datagram)
    assert header == GeneveHeader(VNI, PROTOCOL_ETHERNET, SUBJECT.options())
    assert payload == _frame(SERVER_MAC, GATEWAY_MAC, ethertype, packet)


def test_frames_from_an_ethernet_site_are_unwrapped() -> None:
    gw = ethernet_gateway()
    reply = ipv4(SERVER, UE)
    frame = _frame(GATEWAY_MAC, SERVER_MAC, PROTOCOL_IPV4, reply)
    result = gw.inbound(header_bytes(VNI, PROTOCOL_ETHERNET) + frame, (SITE, 6081), 1.0)
    assert isinstance(result, Delivered)
    assert bytes(result.packet) == reply
    # Bare IP from the same site is still taken: the framing is how we send.
    result = gw.inbound(header_bytes(VNI, PROTOCOL_IPV4) + reply, (SITE, 6081), 1.0)
    assert isinstance(result, Delivered)
    assert gw.received == 2


def test_the_default_site_still_sends_bare_ip() -> None:
    [(_, datagram)] = gateway().outbound(ipv4(UE, SERVER), 0.0)
    assert decode(datagram)[0].protocol == PROTOCOL_IPV4


@pytest.mark.parametrize(
    ("inner", "reason"),
    [
        (_frame(GATEWAY_MAC, SERVER_MAC, 0x0806, bytes(28)), ep.WRONG_PROTOCOL),  # ARP
        (_frame(GATEWAY_MAC, SERVER_MAC, 0x8100, bytes(46)), ep.WRONG_PROTOCOL),  # a VLAN tag
        (_frame(GATEWAY_MAC, SERVER_MAC, PROTOCOL_IPV6, ipv4(SERVER, UE)), ep.WRONG_PROTOCOL),
        (_frame(GATEWAY_MAC, SERVER_MAC, PROTOCOL_IPV4, b"\x45"), ep.MALFORMED_INNER),
        (_mac_octets(GATEWAY_MAC) + _mac_octets(SERVER_MAC), ep.MALFORMED_INNER),
        (b"", ep.MALFORMED_INNER),
        (_frame(GATEWAY_MAC, SERVER_MAC, PROTOCOL_IPV4, ipv4(UE, UE)), ep.SPOOFED_SOURCE),
    ],
)
def test_what_an_ethernet_site_may_not_send(inner: bytes, reason: str) -> None:
    gw = ethernet_gateway()
    datagram = header_bytes(VNI, PROTOCOL_ETHERNET) + inner
    assert gw.inbound(datagram, (SITE, 6081), 0.0) == Dropped(reason)
    assert gw.drops == {reason: 1}


def test_a_frame_from_a_site_without_framing_is_the_wrong_protocol() -> None:
    frame = _frame(GATEWAY_MAC, SERVER_MAC, PROTOCOL_IPV4, ipv4(SERVER, UE))
    result = gateway().inbound(header_bytes(VNI, PROTOCOL_ETHERNET) + frame, (SITE, 6081), 0.0)
    assert result == Dropped(ep.WRONG_PROTOCOL)


@pytest.mark.parametrize(
    ("local", "peer"),
    [("02:5a:00:00:00", SERVER_MAC), (GATEWAY_MAC, "0a-00-00-00-00-05"), (GATEWAY_MAC, 5)],
)
def test_framing_needs_two_mac_addresses(local: str, peer: object) -> None:
    with pytest.raises(GeneveError, match="MAC"):
        EthernetFraming(local, peer)  # type: ignore[arg-type]


def test_a_site_takes_only_a_framing() -> None:
    assert EthernetFraming("02:5A:00:00:00:01", SERVER_MAC).local == GATEWAY_MAC
    with pytest.raises(GeneveError, match="EthernetFraming"):
        Site("hq", VNI, SITE, ethernet="ethernet")  # type: ignore[arg-type]


@given(st.binary(max_size=120))
def test_any_frame_from_an_ethernet_site_is_delivered_or_dropped(inner: bytes) -> None:
    gw = ethernet_gateway()
    result = gw.inbound(header_bytes(VNI, PROTOCOL_ETHERNET) + inner, (SITE, 6081), 0.0)
    assert isinstance(result, Delivered | Dropped)
