"""NFLOG over netlink without I/O: the configuration a listener sends, and what it reads.

The gateway's deny rules log to an NFLOG group (`nft ... log group N prefix "class_x"`);
the kernel sends each logged packet to the socket bound to that group as a netlink
message of subsystem NFNL_SUBSYS_ULOG. This module builds the configuration requests
(bind the group, copy the first `copy_range` octets of each packet: the IP and
transport headers are all the audit reads) and parses what comes back into immutable
values: `NflogPacket` for a logged packet, `Ack` for the answer to a request. `flow_of`
reads a logged packet's IPv4/IPv6 and TCP/UDP/ICMP headers into (source, destination,
protocol, destination port).

Sources: netlink(7) and linux/netlink.h (the message and attribute framing, in host
byte order, aligned to 4 octets), linux/netfilter/nfnetlink.h (the nfgenmsg header,
whose res_id carries the group in network order), linux/netfilter/nfnetlink_log.h (the
message types, attributes and configuration commands; attribute values are in network
order). Every malformed input raises `NflogError` and nothing else.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from ztsim.errors import InvalidInput
from ztsim.net.netlink import (
    NFGEN,
    NLM_F_ACK,
    NLMSG_ERROR,
    NLMSG_OVERRUN,
    Ack,
    ack,
    attr,
    attributes,
    messages,
    request,
)

NFNL_SUBSYS_ULOG = 4  # linux/netfilter/nfnetlink.h: NFLOG's subsystem
NFULNL_MSG_PACKET = 0  # nfnetlink_log.h enum nfulnl_msg_types
NFULNL_MSG_CONFIG = 1
PACKET_TYPE = NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_PACKET  # nfnetlink.h: subsys << 8 | msg
CONFIG_TYPE = NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_CONFIG


# nfnetlink_log.h enum nfulnl_msg_config_cmds
CMD_BIND, CMD_UNBIND, CMD_PF_BIND, CMD_PF_UNBIND = 1, 2, 3, 4
# nfnetlink_log.h enum nfulnl_attr_config
CFG_CMD, CFG_MODE, CFG_NLBUFSIZ, CFG_TIMEOUT, CFG_QTHRESH, CFG_FLAGS = 1, 2, 3, 4, 5, 6
COPY_PACKET = 0x02  # nfnetlink_log.h NFULNL_COPY_PACKET
CFG_F_SEQ = 0x0001  # nfnetlink_log.h NFULNL_CFG_F_SEQ: number the packets, gaps show losses
# nfnetlink_log.h enum nfulnl_attr_type
ATTR_PACKET_HDR, ATTR_MARK, ATTR_TIMESTAMP, ATTR_INDEV, ATTR_OUTDEV = 1, 2, 3, 4, 5
ATTR_PAYLOAD, ATTR_PREFIX, ATTR_SEQ = 9, 10, 12

AF_UNSPEC, AF_INET, AF_INET6 = 0, 2, 10  # linux/socket.h; also NFPROTO_IPV4 / NFPROTO_IPV6
COPY_RANGE = 128  # a 60-octet IPv4 header with options, or IPv6 with extensions, + ports
PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_ICMPV6 = 1, 6, 17, 58  # IANA protocol numbers

_MAX_GROUP = 0xFFFF  # res_id is 16 bits


class NflogError(InvalidInput):
    """A netlink/NFLOG message, or a logged packet's headers, that do not parse."""


@dataclass(frozen=True, slots=True)
class NflogPacket:
    """One logged packet: its group, the rule's prefix, the copied octets and what the
    kernel told about it (None: the attribute was absent)."""

    group: int
    family: int  # AF_INET / AF_INET6: the protocol family the packet was logged in
    prefix: str
    payload: bytes
    hook: int | None = None
    timestamp: float | None = None  # seconds since the epoch, when the packet had one
    indev: int | None = None  # interface indexes
    outdev: int | None = None
    seq: int | None = None  # the group's own sequence number (with CFG_F_SEQ)


@dataclass(frozen=True, slots=True)
class Flow:
    """The first headers of a logged packet. `port`/`source_port`: 0 when the protocol has
    no ports (ICMP) or the packet is a non-first fragment."""

    source: str
    destination: str
    protocol: int
    port: int
    source_port: int = 0


# -- requests ------------------------------------------------------------------------------


def _config(seq: int, family: int, group: int, *attrs: bytes) -> bytes:
    # Every request is acknowledged: errors come back.
    return request(CONFIG_TYPE, NLM_F_ACK, seq, family, group, *attrs)


def _check_group(group: int) -> None:
    if not 0 <= group <= _MAX_GROUP:
        raise NflogError(f"group {group}: 0 to {_MAX_GROUP}")


def setup_requests(group: int, copy_range: int = COPY_RANGE, first_seq: int = 1) -> list[bytes]:
    """The requests that make a socket the listener of `group`, in order, numbered from
    `first_seq`: the per-family binds (ignored by kernels since 3.17, needed before), the
    group bind, the copy mode, prompt delivery (a batch is sent after 32 packets or
    0.1 s, not the kernel's default of 100 packets or 1 s) and sequence numbers."""
    _check_group(group)
    if not 0 < copy_range <= 0xFFFF:
        raise NflogError(f"copy range {copy_range}: 1 to 65535 octets")
    steps: list[tuple[int, int, list[bytes]]] = []  # (family, group, attributes)
    for family in (AF_INET, AF_INET6):
        steps.append((family, 0, [attr(CFG_CMD, bytes([CMD_PF_UNBIND]))]))
        steps.append((family, 0, [attr(CFG_CMD, bytes([CMD_PF_BIND]))]))
    steps.append((AF_UNSPEC, group, [attr(CFG_CMD, bytes([CMD_BIND]))]))
    mode = struct.pack("!IBx", copy_range, COPY_PACKET)  # nfulnl_msg_config_mode
    steps.append((AF_UNSPEC, group, [attr(CFG_MODE, mode)]))
    flush = [attr(CFG_QTHRESH, struct.pack("!I", 32)), attr(CFG_TIMEOUT, struct.pack("!I", 10))]
    steps.append((AF_UNSPEC, group, flush))  # the timeout is in 1/100 s
    steps.append((AF_UNSPEC, group, [attr(CFG_FLAGS, struct.pack("!H", CFG_F_SEQ))]))
    return [_config(first_seq + n, f, g, *attrs) for n, (f, g, attrs) in enumerate(steps)]


def unbind_request(group: int, seq: int) -> bytes:
    _check_group(group)
    return _config(seq, AF_UNSPEC, group, attr(CFG_CMD, bytes([CMD_UNBIND])))


# -- responses -----------------------------------------------------------------------------


def _u32(attrs: dict[int, bytes], kind: int) -> int | None:
    value = attrs.get(kind)
    if value is None:
        return None
    if len(value) != 4:
        raise NflogError(f"attribute {kind}: {len(value)} octets, 4 expected")
    number: int = struct.unpack("!I", value)[0]
    return number


def _packet(body: bytes) -> NflogPacket:
    if len(body) < NFGEN.size:
        raise NflogError("NFLOG packet message shorter than its nfgenmsg header")
    family, _, group = NFGEN.unpack_from(body)
    attrs = attributes(body, NflogError, NFGEN.size)
    hook = None
    if (header := attrs.get(ATTR_PACKET_HDR)) is not None:
        if len(header) < 4:  # nfulnl_msg_packet_hdr: hw_protocol, hook, pad
            raise NflogError("packet header attribute shorter than 4 octets")
        hook = header[2]
    timestamp = None
    if (stamp := attrs.get(ATTR_TIMESTAMP)) is not None:
        if len(stamp) != 16:  # nfulnl_msg_packet_timestamp: be64 sec, be64 usec
            raise NflogError("timestamp attribute is not 16 octets")
        sec, usec = struct.unpack("!QQ", stamp)
        if usec >= 1_000_000:
            raise NflogError("timestamp microseconds out of range")
        timestamp = sec + usec / 1e6
    try:
        prefix = attrs.get(ATTR_PREFIX, b"").split(b"\0", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        raise NflogError("prefix is not UTF-8") from None
    return NflogPacket(
        group=group,
        family=family,
        prefix=prefix,
        payload=attrs.get(ATTR_PAYLOAD, b""),
        hook=hook,
        timestamp=timestamp,
        indev=_u32(attrs, ATTR_INDEV),
        outdev=_u32(attrs, ATTR_OUTDEV),
        seq=_u32(attrs, ATTR_SEQ),
    )


def parse(datagram: bytes) -> list[NflogPacket | Ack]:
    """Every logged packet and acknowledgement in a datagram from the kernel, in order.
    Other messages (NOOP, DONE, other subsystems) are skipped; a datagram that is not a
    sequence of well-formed netlink messages raises `NflogError`."""
    out: list[NflogPacket | Ack] = []
    for kind, _, seq, body in messages(bytes(datagram), NflogError):
        if kind == PACKET_TYPE:
            out.append(_packet(body))
        elif kind == NLMSG_ERROR:
            out.append(ack(seq, body, NflogError))
        elif kind == NLMSG_OVERRUN:
            raise NflogError("netlink overrun message")
    return out


# -- the logged packet's headers -------------------------------------------------------------

_IPV6_SKIPPED = {0, 43, 60}  # RFC 8200 §4: hop-by-hop, routing, destination options
_IPV6_FRAGMENT, _IPV6_AH = 44, 51  # RFC 8200 §4.5, RFC 4302
_IPV6_EXTENSIONS = _IPV6_SKIPPED | {_IPV6_FRAGMENT, _IPV6_AH}
_PORTED = {PROTO_TCP, PROTO_UDP}  # the policy's ports are TCP and UDP ports (net.ruleset)


def _ports(packet: bytes, offset: int, protocol: int, fragment: bool) -> tuple[int, int]:
    if fragment or protocol not in _PORTED:
        return 0, 0
    if len(packet) < offset + 4:
        raise NflogError("transport header cut short before its ports")
    source, destination = struct.unpack_from("!HH", packet, offset)
    return destination, source


def _ipv4(packet: bytes) -> Flow:
    header = (packet[0] & 0x0F) * 4  # RFC 791 §3.1: IHL in 32-bit words
    if header < 20 or len(packet) < header:
        raise NflogError("IPv4 header cut short or IHL below 5")
    fragment = struct.unpack_from("!H", packet, 6)[0] & 0x1FFF != 0  # a non-first fragment
    protocol = packet[9]
    port, source_port = _ports(packet, header, protocol, fragment)
    source = str(ipaddress.IPv4Address(packet[12:16]))
    return Flow(source, str(ipaddress.IPv4Address(packet[16:20])), protocol, port, source_port)


def _ipv6(packet: bytes) -> Flow:
    if len(packet) < 40:
        raise NflogError("IPv6 header cut short")
    protocol, offset, fragment = packet[6], 40, False
    for _ in range(8):  # a bound: more extension headers than this is not a real packet
        if protocol not in _IPV6_EXTENSIONS:
            break
        if len(packet) < offset + 8:
            raise NflogError("IPv6 extension header cut short")
        following = packet[offset]
        if protocol == _IPV6_FRAGMENT:
            fragment = struct.unpack_from("!H", packet, offset + 2)[0] >> 3 != 0
            size = 8
        elif protocol == _IPV6_AH:
            size = (packet[offset + 1] + 2) * 4  # RFC 4302 §2.2: in 4-octet words, less 2
        else:
            size = (packet[offset + 1] + 1) * 8  # RFC 8200 §4.3: 8-octet units, less 1
        protocol, offset = following, offset + size
    if protocol in _IPV6_EXTENSIONS:
        raise NflogError("too many IPv6 extension headers")
    port, source_port = _ports(packet, offset, protocol, fragment)
    source = str(ipaddress.IPv6Address(packet[8:24]))
    return Flow(source, str(ipaddress.IPv6Address(packet[24:40])), protocol, port, source_port)


def flow_of(payload: bytes) -> Flow:
    """Source, destination, protocol (after IPv6 extension headers, as nft's
    `meta l4proto`) and destination port of the IP packet that `payload` begins."""
    packet = bytes(payload)
    if not packet:
        raise NflogError("no packet copied")
    version = packet[0] >> 4
    if version == 4:
        return _ipv4(packet)
    if version == 6:
        return _ipv6(packet)
    raise NflogError(f"IP version {version}: not IPv4 or IPv6")
