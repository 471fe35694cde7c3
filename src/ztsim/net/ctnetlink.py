"""Conntrack over netlink without I/O: the event groups, the protocol's numbers and
framing, and the messages the kernel sends, parsed.

The gateway's forward chain accepts established flows by their conntrack state, so
every flow it allowed has a conntrack entry, and the kernel announces entries as they
come and go (ctnetlink): a socket that joins the groups NFNLGRP_CONNTRACK_NEW and
NFNLGRP_CONNTRACK_DESTROY receives an IPCTNL_MSG_CT_NEW message for each confirmed
entry and an IPCTNL_MSG_CT_DELETE message for each entry that goes (timed out, closed,
deleted). The audit reads those as an allowed flow's start and stop. This module parses
them into immutable `ConntrackEvent`s, and parses the kernel's answers (entries,
acknowledgements, ends of dumps) to the requests `ctnetlink_requests` builds, with the
same numbers, defined here once (the netlink framing is `ztsim.net.netlink`'s).

What an event carries depends on the namespace's sysctls: packet and byte counters
each way only with net.netfilter.nf_conntrack_acct=1, start and stop times only with
net.netfilter.nf_conntrack_timestamp=1, both set before the entry was created (the
role may set both in its own namespace). Absent, they are None here.

Sources: netlink(7) and linux/netlink.h (framing in host byte order, 4-octet
alignment, NLA_F_NESTED), linux/netfilter/nfnetlink.h (nfgenmsg; the groups; subsystem
NFNL_SUBSYS_CTNETLINK), linux/netfilter/nfnetlink_conntrack.h (message types and
attributes, whose values are in network order). Every malformed input raises
`ConntrackError` and nothing else.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum

from ztsim.errors import InvalidInput
from ztsim.net.netlink import (
    NFGEN,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSG_OVERRUN,
    Ack,
    ack,
    attributes,
    messages,
)

SOL_NETLINK, NETLINK_ADD_MEMBERSHIP = 270, 1  # linux/socket.h, linux/netlink.h
NFNL_SUBSYS_CTNETLINK = 1  # nfnetlink.h
# nfnetlink.h enum nfnetlink_groups: the multicast groups joined (bind's mask: bit n-1)
NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_UPDATE, NFNLGRP_CONNTRACK_DESTROY = 1, 2, 3
EVENT_GROUPS = (NFNLGRP_CONNTRACK_NEW, NFNLGRP_CONNTRACK_DESTROY)
# nfnetlink_conntrack.h enum cntl_msg_types
MSG_NEW, MSG_GET, MSG_DELETE = 0, 1, 2

NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH
NLM_F_CREATE = 0x400  # on an event: the entry is new (not an update)

# nfnetlink_conntrack.h enum ctattr_type (27, CTA_TIMESTAMP_EVENT, from Linux 6.x headers)
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS = 1, 2, 3
CTA_MARK, CTA_COUNTERS_ORIG, CTA_COUNTERS_REPLY = 8, 9, 10
CTA_ID, CTA_ZONE, CTA_TIMESTAMP, CTA_FILTER, CTA_TIMESTAMP_EVENT = 12, 18, 20, 25, 27
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2  # enum ctattr_tuple
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4  # enum ctattr_ip
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3  # enum ctattr_l4proto
# enum ctattr_counters: 64-bit values; the 32-bit ones only from very old kernels
CTA_COUNTERS_PACKETS, CTA_COUNTERS_BYTES, CTA_COUNTERS32_PACKETS, CTA_COUNTERS32_BYTES = 1, 2, 3, 4
CTA_TIMESTAMP_START, CTA_TIMESTAMP_STOP = 1, 2  # enum ctattr_tstamp: be64 nanoseconds

AF_INET, AF_INET6 = 2, 10  # linux/socket.h; the same numbers as NFPROTO_IPV4 / _IPV6
# family -> (source attribute, destination attribute, address octets) of a tuple's CTA_TUPLE_IP
IP_ATTRS = {
    AF_INET: (CTA_IP_V4_SRC, CTA_IP_V4_DST, 4),
    AF_INET6: (CTA_IP_V6_SRC, CTA_IP_V6_DST, 16),
}


class ConntrackError(InvalidInput):
    """A netlink/ctnetlink message that does not parse, or a request that cannot be built."""


class Kind(StrEnum):
    NEW = "new"  # an event: the entry was confirmed (the flow's first packet passed)
    UPDATE = "update"  # an event of NFNLGRP_CONNTRACK_UPDATE (not joined by the audit)
    DESTROY = "destroy"  # an event: the entry is gone
    ENTRY = "entry"  # one entry of a dump (the answer to a GET request)


@dataclass(frozen=True, slots=True)
class FlowTuple:
    """One direction of an entry. Ports are 0 for protocols without them (ICMP)."""

    source: str
    destination: str
    protocol: int
    source_port: int
    destination_port: int


@dataclass(frozen=True, slots=True)
class Counters:
    packets: int
    bytes: int


@dataclass(frozen=True, slots=True)
class ConntrackEvent:
    """An entry as one message tells it; None: the kernel did not send the attribute."""

    kind: Kind
    family: int  # AF_INET / AF_INET6
    original: FlowTuple  # as the flow's first packet had it (the SIM's side, for the audit)
    reply: FlowTuple | None = None
    id: int | None = None  # the kernel's id of the entry (32 bits, not unique forever)
    mark: int | None = None  # events leave a mark of 0 out
    status: int | None = None  # IPS_* bits
    zone: int | None = None
    original_counters: Counters | None = None  # nf_conntrack_acct=1
    reply_counters: Counters | None = None
    start_ns: int | None = None  # nf_conntrack_timestamp=1: CLOCK_REALTIME nanoseconds
    stop_ns: int | None = None  # on DESTROY only
    event_ns: int | None = None  # when the kernel sent the event (newer kernels)
    # The original tuple attribute as the kernel sent it: a delete request echoes it, so
    # entries of any protocol (ICMP's id, type and code too) are named exactly.
    raw_tuple: bytes = field(default=b"", repr=False, compare=False)

    @property
    def duration(self) -> float | None:
        """Seconds from the entry's start to its stop, when the kernel sent both."""
        if self.start_ns is None or self.stop_ns is None:
            return None
        return max(0, self.stop_ns - self.start_ns) / 1e9


@dataclass(frozen=True, slots=True)
class Done:
    """The end of the dump answering request `seq`."""

    seq: int


def groups_mask(groups: tuple[int, ...] = EVENT_GROUPS) -> int:
    """The nl_groups bitmask of bind(2) for `groups` (netlink(7): group n is bit n-1)."""
    mask = 0
    for group in groups:
        if not 1 <= group <= 32:
            raise ConntrackError(f"group {group}: bind's mask holds groups 1 to 32")
        mask |= 1 << (group - 1)
    return mask


# -- parsing -------------------------------------------------------------------------------


def _attrs(data: bytes, start: int = 0, end: int | None = None) -> dict[int, bytes]:
    return attributes(data, ConntrackError, start, end)


def _number(value: bytes | None, what: str, size: int) -> int | None:
    if value is None:
        return None
    if len(value) != size:
        raise ConntrackError(f"{what}: {len(value)} octets, {size} expected")
    return int.from_bytes(value, "big")


def _tuple(raw: bytes | None, family: int, what: str) -> FlowTuple | None:
    if raw is None:
        return None
    attrs = _attrs(raw)
    ip, proto = attrs.get(CTA_TUPLE_IP), attrs.get(CTA_TUPLE_PROTO)
    if ip is None or proto is None:
        raise ConntrackError(f"{what} tuple without its addresses or protocol")
    source_kind, destination_kind, size = IP_ATTRS[family]
    addresses = _attrs(ip)
    source, destination = addresses.get(source_kind), addresses.get(destination_kind)
    if source is None or destination is None or len(source) != size or len(destination) != size:
        raise ConntrackError(f"{what} tuple without two addresses of the message's family")
    ports = _attrs(proto)
    protocol = _number(ports.get(CTA_PROTO_NUM), "protocol", 1)
    if protocol is None:
        raise ConntrackError(f"{what} tuple without its protocol number")
    address = ipaddress.IPv4Address if family == AF_INET else ipaddress.IPv6Address
    return FlowTuple(
        str(address(source)),
        str(address(destination)),
        protocol,
        _number(ports.get(CTA_PROTO_SRC_PORT), "source port", 2) or 0,
        _number(ports.get(CTA_PROTO_DST_PORT), "destination port", 2) or 0,
    )


def _counters(raw: bytes | None) -> Counters | None:
    if raw is None:
        return None
    attrs = _attrs(raw)
    packets = _number(attrs.get(CTA_COUNTERS_PACKETS), "packets", 8)
    size = _number(attrs.get(CTA_COUNTERS_BYTES), "bytes", 8)
    if packets is None:
        packets = _number(attrs.get(CTA_COUNTERS32_PACKETS), "packets", 4)
    if size is None:
        size = _number(attrs.get(CTA_COUNTERS32_BYTES), "bytes", 4)
    if packets is None or size is None:
        raise ConntrackError("counters without packets or bytes")
    return Counters(packets, size)


def _entry(kind: Kind, body: bytes) -> ConntrackEvent:
    if len(body) < NFGEN.size:
        raise ConntrackError("conntrack message shorter than its nfgenmsg header")
    family = body[0]
    if family not in IP_ATTRS:
        raise ConntrackError(f"conntrack message of family {family}: not IPv4 or IPv6")
    attrs = _attrs(body, NFGEN.size)
    raw_tuple = attrs.get(CTA_TUPLE_ORIG)
    original = _tuple(raw_tuple, family, "original")
    if original is None:
        raise ConntrackError("conntrack message without its original tuple")
    start = stop = None
    if (stamps := attrs.get(CTA_TIMESTAMP)) is not None:
        times = _attrs(stamps)
        start = _number(times.get(CTA_TIMESTAMP_START), "start time", 8)
        stop = _number(times.get(CTA_TIMESTAMP_STOP), "stop time", 8)
    return ConntrackEvent(
        kind=kind,
        family=family,
        original=original,
        reply=_tuple(attrs.get(CTA_TUPLE_REPLY), family, "reply"),
        id=_number(attrs.get(CTA_ID), "id", 4),
        mark=_number(attrs.get(CTA_MARK), "mark", 4),
        status=_number(attrs.get(CTA_STATUS), "status", 4),
        zone=_number(attrs.get(CTA_ZONE), "zone", 2),
        original_counters=_counters(attrs.get(CTA_COUNTERS_ORIG)),
        reply_counters=_counters(attrs.get(CTA_COUNTERS_REPLY)),
        start_ns=start,
        stop_ns=stop,
        event_ns=_number(attrs.get(CTA_TIMESTAMP_EVENT), "event time", 8),
        raw_tuple=raw_tuple or b"",
    )


NEW_TYPE = NFNL_SUBSYS_CTNETLINK << 8 | MSG_NEW  # nfnetlink.h: subsys << 8 | message
GET_TYPE = NFNL_SUBSYS_CTNETLINK << 8 | MSG_GET
DELETE_TYPE = NFNL_SUBSYS_CTNETLINK << 8 | MSG_DELETE


def parse(datagram: bytes) -> list[ConntrackEvent | Ack | Done]:
    """Every conntrack entry, acknowledgement and end of dump in a datagram, in order.
    Other messages (NOOP, other subsystems, statistics) are skipped; anything malformed
    raises `ConntrackError`."""
    out: list[ConntrackEvent | Ack | Done] = []
    for kind, flags, seq, body in messages(bytes(datagram), ConntrackError):
        if kind == NEW_TYPE:
            out.append(_entry(Kind.NEW if flags & NLM_F_CREATE else Kind.UPDATE, body))
        elif kind == DELETE_TYPE:
            out.append(_entry(Kind.DESTROY, body))
        elif kind == GET_TYPE:
            out.append(_entry(Kind.ENTRY, body))
        elif kind == NLMSG_ERROR:
            out.append(ack(seq, body, ConntrackError))
        elif kind == NLMSG_DONE:
            out.append(Done(seq))
        elif kind == NLMSG_OVERRUN:
            raise ConntrackError("netlink overrun message")
    return out
