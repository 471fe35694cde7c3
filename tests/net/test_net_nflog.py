"""The NFLOG codec against a datagram the kernel sent, messages built here by hand from
the header definitions (linux/netlink.h, nfnetlink.h, nfnetlink_log.h), and anything."""

from __future__ import annotations

import contextlib
import struct
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.errors import InvalidInput
from ztsim.net.netlink import Ack
from ztsim.net.nflog import (
    Flow,
    NflogError,
    NflogPacket,
    flow_of,
    parse,
    setup_requests,
    unbind_request,
)

little_endian = pytest.mark.skipif(
    sys.byteorder != "little", reason="the captured datagram's netlink headers are little-endian"
)

# Captured from kernel 6.18 (x86_64) by `open_nflog(5701)` in a namespace whose input chain
# held `ip saddr 10.99.0.2 limit rate 1000/second burst 1000 packets log prefix "class_x"
# group 5701`: a UDP datagram to port 5353 and a TCP SYN to port 443 from 10.99.0.2, batched
# in one datagram with an NLMSG_DONE after them.
KERNEL_DATAGRAM = bytes.fromhex(
    "a40000000004000000000000000000000200164508000100080001000c000a00636c6173735f78000800"
    "040000000002100008000006000062a37cc94f81000006000f000001000006001100000e000012001000"
    "ee7b666be7e762a37cc94f810800000014000300000000006b12f0d70000000000020e0c08000c000000"
    "0000220009004500001ec4844000401161820a6300020a630001a10614e9000a14e468690000c0000000"
    "0004000000000000000000000200164508000100080001000c000a00636c6173735f7800080004000000"
    "0002100008000006000062a37cc94f81000006000f000001000006001100000e000012001000ee7b666b"
    "e7e762a37cc94f810800000014000300000000006b12f0d70000000000020ea508000c00000000014000"
    "09004500003c8645400040069fae0a6300020a630001eb4401bb3305099000000000a002faf014f70000"
    "020405b40402080ad4a6f274000000000103030a1400000003000000000000000000000000001645"
)


@little_endian
def test_the_kernels_datagram_parses_into_its_two_packets() -> None:
    udp, tcp = parse(KERNEL_DATAGRAM)
    assert isinstance(udp, NflogPacket)
    assert isinstance(tcp, NflogPacket)
    assert (udp.group, udp.family, udp.prefix, udp.hook) == (
        5701,
        2,
        "class_x",
        1,
    )  # NF_INET_LOCAL_IN
    assert (udp.indev, udp.outdev, udp.seq, tcp.seq) == (2, None, 0, 1)
    assert (udp.timestamp, tcp.timestamp) == (1796403415.134668, 1796403415.134821)
    assert flow_of(udp.payload) == Flow("10.99.0.2", "10.99.0.1", 17, 5353, 41222)
    assert flow_of(tcp.payload) == Flow("10.99.0.2", "10.99.0.1", 6, 443, 60228)
    assert tcp.payload[33] == 0x02  # the SYN flag: the copy holds the whole TCP header


# -- hand-built messages ------------------------------------------------------------------


def attr(kind: int, value: bytes) -> bytes:
    """nlattr: u16 length (header included), u16 type, host order; padded to 4 (NLA_ALIGN)."""
    raw = struct.pack("=HH", 4 + len(value), kind) + value
    return raw + bytes(-len(raw) % 4)


def message(kind: int, body: bytes, seq: int = 0, flags: int = 0) -> bytes:
    """nlmsghdr: u32 length, u16 type, u16 flags, u32 seq, u32 port id, host order."""
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body + bytes(-len(body) % 4)


def logged(group: int, family: int, *attrs: bytes) -> bytes:
    """An NFULNL_MSG_PACKET of subsystem NFNL_SUBSYS_ULOG: type 4 << 8 | 0; nfgenmsg
    (family, version 0, res_id = the group, big-endian) before the attributes."""
    return message(0x0400, struct.pack("!BBH", family, 0, group) + b"".join(attrs))


UDP4 = bytes.fromhex("450000200001000040110000c0000201c6336407303900350008000074657374")


def test_a_hand_built_packet_with_every_attribute_read() -> None:
    wire = logged(
        5701,
        2,
        attr(1, struct.pack("!HBx", 0x0800, 2)),  # NFULA_PACKET_HDR: hw_protocol, hook 2
        attr(3, struct.pack("!QQ", 1_700_000_000, 250_000)),  # NFULA_TIMESTAMP
        attr(4, struct.pack("!I", 7)),  # NFULA_IFINDEX_INDEV
        attr(5, struct.pack("!I", 9)),  # NFULA_IFINDEX_OUTDEV
        attr(9, UDP4),  # NFULA_PAYLOAD
        attr(10, b"forward\0"),  # NFULA_PREFIX, NUL-terminated
        attr(12, struct.pack("!I", 41)),  # NFULA_SEQ
        attr(99, b"unknown attributes are skipped"),
    )
    (packet,) = parse(wire)
    assert packet == NflogPacket(5701, 2, "forward", UDP4, 2, 1_700_000_000.25, 7, 9, 41)
    assert flow_of(packet.payload) == Flow("192.0.2.1", "198.51.100.7", 17, 53, 12345)


def test_absent_attributes_are_none_and_several_messages_come_in_order() -> None:
    first = logged(1, 10, attr(10, b"a\0"))
    error = message(2, struct.pack("=i", -16) + bytes(16), seq=9)  # NLMSG_ERROR: -EBUSY
    ack = message(2, struct.pack("=i", 0) + bytes(16), seq=10)
    noop, done = message(1, b""), message(3, struct.pack("=i", 0))
    other = message(0x0100, bytes(4))  # another subsystem (conntrack): skipped
    parsed = parse(first + noop + error + other + ack + done)
    assert parsed == [NflogPacket(1, 10, "a", b""), Ack(9, -16), Ack(10, 0)]


def test_the_setup_requests_follow_the_header_definitions() -> None:
    requests = setup_requests(5701, copy_range=128, first_seq=7)
    decoded = []
    for n, request in enumerate(requests):
        length, kind, flags, seq, port = struct.unpack_from("=IHHII", request)
        assert (length, kind, flags, seq, port) == (len(request), 0x0401, 0x05, 7 + n, 0)
        family, version, group = struct.unpack_from("!BBH", request, 16)
        assert version == 0
        attrs = []
        offset = 20
        while offset < len(request):
            size, attr_type = struct.unpack_from("=HH", request, offset)
            attrs.append((attr_type, request[offset + 4 : offset + size]))
            offset += (size + 3) & ~3
        decoded.append((family, group, attrs))
    cmd, mode, timeout, qthresh, flags = 1, 2, 4, 5, 6  # enum nfulnl_attr_config
    assert decoded == [
        (2, 0, [(cmd, b"\x04")]),  # NFULNL_CFG_CMD_PF_UNBIND, AF_INET
        (2, 0, [(cmd, b"\x03")]),  # NFULNL_CFG_CMD_PF_BIND
        (10, 0, [(cmd, b"\x04")]),
        (10, 0, [(cmd, b"\x03")]),
        (0, 5701, [(cmd, b"\x01")]),  # NFULNL_CFG_CMD_BIND
        (0, 5701, [(mode, struct.pack("!IBB", 128, 2, 0))]),  # copy_range, COPY_PACKET, pad
        (0, 5701, [(qthresh, struct.pack("!I", 32)), (timeout, struct.pack("!I", 10))]),
        (0, 5701, [(flags, struct.pack("!H", 1))]),  # NFULNL_CFG_F_SEQ
    ]
    assert unbind_request(5701, 3)[20:] == attr(1, b"\x02")  # NFULNL_CFG_CMD_UNBIND


@pytest.mark.parametrize("group", [-1, 0x10000])
def test_a_group_outside_16_bits_is_refused(group: int) -> None:
    with pytest.raises(NflogError, match="group"):
        setup_requests(group)


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        (bytes(15), "trailing"),
        (message(3, b"")[:-1] + b"", "trailing|length"),
        (struct.pack("=IHHII", 64, 3, 0, 0, 0), "does not fit"),
        (struct.pack("=IHHII", 8, 3, 0, 0, 0), "does not fit"),
        (message(0x0400, b"\x02\x00"), "nfgenmsg"),
        (logged(1, 2, struct.pack("=HH", 40, 9)), "attribute length"),
        (logged(1, 2, struct.pack("=HH", 2, 9)), "attribute length"),
        (logged(1, 2, attr(4, b"\x00\x01")), "4 expected"),
        (logged(1, 2, attr(1, b"\x08")), "packet header"),
        (logged(1, 2, attr(3, bytes(8))), "timestamp"),
        (logged(1, 2, attr(3, struct.pack("!QQ", 1, 1_000_000))), "microseconds"),
        (logged(1, 2, attr(10, b"\xff\xfe\0")), "UTF-8"),
        (message(2, b"\x00\x00"), "error code"),
        (message(4, b""), "overrun"),
    ],
)
def test_malformed_messages_are_nflog_errors(wire: bytes, match: str) -> None:
    with pytest.raises(NflogError, match=match):
        parse(wire)


def test_the_error_is_invalid_input() -> None:
    assert issubclass(NflogError, InvalidInput)


# -- the logged packet's headers ----------------------------------------------------------


def ipv4(protocol: int, rest: bytes, options: bytes = b"", fragment: int = 0) -> bytes:
    ihl = 5 + len(options) // 4
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(options) + len(rest), 1, fragment, 64,
        protocol, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]),
    )  # fmt: skip
    return header + options + rest


def ipv6(next_header: int, rest: bytes) -> bytes:
    source = bytes.fromhex("20010db8000000000000000000000001")
    destination = bytes.fromhex("20010db8000000000000000000000002")
    return (
        struct.pack("!IHBB", 0x60000000, len(rest), next_header, 64) + source + destination + rest
    )


PORTS = struct.pack("!HH", 40000, 8443) + bytes(16)  # TCP/UDP: source, then destination port


def test_ipv4_headers_with_options_fragments_and_icmp() -> None:
    assert flow_of(ipv4(6, PORTS)) == Flow("10.0.0.1", "10.0.0.2", 6, 8443, 40000)
    assert flow_of(ipv4(17, PORTS, options=bytes(8))).port == 8443  # IHL 7
    assert flow_of(ipv4(17, PORTS, fragment=0x0010)) == Flow("10.0.0.1", "10.0.0.2", 17, 0, 0)
    assert flow_of(ipv4(1, bytes([8, 0, 0, 0]))) == Flow("10.0.0.1", "10.0.0.2", 1, 0, 0)
    assert flow_of(ipv4(132, PORTS)).port == 0  # ports are the policy's TCP and UDP ports only


def test_ipv6_headers_after_extension_headers() -> None:
    hop_by_hop = bytes([60, 0]) + bytes(6)  # next: destination options, 8 octets
    destination_options = bytes([44, 1]) + bytes(14)  # next: fragment, 16 octets
    first_fragment = bytes([17, 0, 0x00, 0x01]) + bytes(4)  # offset 0, M set: has the ports
    packet = ipv6(0, hop_by_hop + destination_options + first_fragment + PORTS)
    assert flow_of(packet) == Flow("2001:db8::1", "2001:db8::2", 17, 8443, 40000)
    later_fragment = bytes([17, 0, 0x00, 0x08]) + bytes(4)  # offset 1: no ports in it
    assert flow_of(ipv6(44, later_fragment + PORTS)).port == 0
    authentication = bytes([6, 1]) + bytes(10)  # RFC 4302: (1 + 2) * 4 = 12 octets
    assert flow_of(ipv6(51, authentication + PORTS)).port == 8443
    assert flow_of(ipv6(58, bytes([128, 0, 0, 0]))) == Flow("2001:db8::1", "2001:db8::2", 58, 0)
    assert flow_of(ipv6(59, b"")).protocol == 59


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"", "no packet"),
        (bytes([0x50]) + bytes(40), "version 5"),
        (ipv4(6, PORTS)[:19], "IPv4 header"),
        (bytes([0x44]) + ipv4(6, PORTS)[1:], "IHL"),
        (ipv4(6, b"\x01\x02"), "ports"),
        (ipv6(17, PORTS)[:39], "IPv6 header"),
        (ipv6(0, bytes([17, 0, 0])), "extension"),
        (ipv6(0, bytes([0, 0]) + bytes(6)) + bytes([0, 0]) * 40, "extension"),
    ],
)
def test_malformed_headers_are_nflog_errors(payload: bytes, match: str) -> None:
    with pytest.raises(NflogError, match=match):
        flow_of(payload)


# -- anything ------------------------------------------------------------------------------


@given(st.binary(max_size=512))
def test_parse_raises_nothing_but_its_error(data: bytes) -> None:
    with contextlib.suppress(NflogError):
        parse(data)


@little_endian
@given(st.lists(st.tuples(st.integers(0, len(KERNEL_DATAGRAM) - 1), st.integers(0, 255))))
def test_the_kernels_datagram_mutated_parses_or_fails_cleanly(edits: list[tuple[int, int]]) -> None:
    data = bytearray(KERNEL_DATAGRAM)
    for offset, value in edits:
        data[offset] = value
    try:
        for item in parse(bytes(data)):
            if isinstance(item, NflogPacket):
                flow_of(item.payload)
    except NflogError:
        pass


@given(st.binary(max_size=160))
def test_flow_of_raises_nothing_but_its_error(data: bytes) -> None:
    for payload in (data, bytes([0x45]) + data, bytes([0x60]) + data):
        with contextlib.suppress(NflogError):
            flow_of(payload)


@given(
    group=st.integers(0, 0xFFFF),
    family=st.sampled_from([2, 10]),
    prefix=st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), max_size=63),
    payload=st.binary(max_size=128),
    seq=st.none() | st.integers(0, 2**32 - 1),
    indev=st.none() | st.integers(0, 2**32 - 1),
)
def test_built_packets_parse_back(
    group: int, family: int, prefix: str, payload: bytes, seq: int | None, indev: int | None
) -> None:
    attrs = [attr(9, payload), attr(10, prefix.encode() + b"\0")]
    if seq is not None:
        attrs.append(attr(12, struct.pack("!I", seq)))
    if indev is not None:
        attrs.append(attr(4, struct.pack("!I", indev)))
    expected = NflogPacket(group, family, prefix, payload, indev=indev, seq=seq)
    assert parse(logged(group, family, *attrs) * 2) == [expected, expected]
