"""Conntrack requests over netlink without I/O: list an address's entries, delete them.

A revoked address's open flows are cut by deleting their conntrack entries, so that
their next packets are new and judged by the table again. Over one netlink socket
(`net.ctdelete`) instead of a `conntrack -D` process per address: a dump of the
entries whose original source or destination is the address, filtered in the kernel,
then a delete request per entry, naming it as the kernel sent it. The kernel's answers
are parsed by `ctnetlink.parse`, whose numbers and framing these requests share.

Sources: netlink(7), linux/netfilter/nfnetlink_conntrack.h (CTA_FILTER, enum
ctattr_filter), net/netfilter/nf_internals.h (the filter's flags),
net/netfilter/nf_conntrack_netlink.c (how the kernel reads them). A request that cannot
be built raises `ConntrackError`.
"""

from __future__ import annotations

import ipaddress
import struct

from ztsim.net.ctnetlink import (
    AF_INET,
    AF_INET6,
    CTA_FILTER,
    CTA_ID,
    CTA_TUPLE_IP,
    CTA_TUPLE_ORIG,
    CTA_ZONE,
    DELETE_TYPE,
    GET_TYPE,
    IP_ATTRS,
    NLM_F_DUMP,
    ConntrackError,
    ConntrackEvent,
)
from ztsim.net.netlink import NLA_F_NESTED, NLM_F_ACK, attr, request

CTA_FILTER_ORIG_FLAGS = 1  # enum ctattr_filter
# net/netfilter/nf_internals.h: which fields of the filter's tuple must match (Linux 5.8+)
FILTER_IP_SRC, FILTER_IP_DST = 1 << 0, 1 << 1

_U16, _U32 = struct.Struct("!H"), struct.Struct("!I")
# The filter's flags are NLA_U32, in host order (nf_conntrack_netlink.c: nla_get_u32)
_HOST_U32 = struct.Struct("=I")


def _request(kind: int, flags: int, seq: int, family: int, *attrs: bytes) -> bytes:
    return request(kind, flags, seq, family, 0, *attrs)  # res_id 0


def dump_request(seq: int, address: str, side: str) -> bytes:
    """Request `seq`: every entry whose original `side` ("source" or "destination") is
    `address`, filtered by the kernel (CTA_FILTER, Linux 5.8+); answered by ENTRY
    messages and a Done."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ConntrackError(f"{address!r} is not an IP address") from None
    if side not in ("source", "destination"):
        raise ConntrackError(f"side {side!r}: source or destination")
    family = AF_INET if ip.version == 4 else AF_INET6
    source_kind, destination_kind, _ = IP_ATTRS[family]
    which, flag = (
        (source_kind, FILTER_IP_SRC) if side == "source" else (destination_kind, FILTER_IP_DST)
    )
    ip_attr = attr(CTA_TUPLE_IP | NLA_F_NESTED, attr(which, ip.packed))
    return _request(
        GET_TYPE,
        NLM_F_DUMP,
        seq,
        family,
        attr(CTA_TUPLE_ORIG | NLA_F_NESTED, ip_attr),
        attr(CTA_FILTER | NLA_F_NESTED, attr(CTA_FILTER_ORIG_FLAGS, _HOST_U32.pack(flag))),
    )


def dump_all_request(seq: int, family: int) -> bytes:
    """Request `seq`: every entry of `family` (AF_INET or AF_INET6), unfiltered."""
    if family not in IP_ATTRS:
        raise ConntrackError(f"family {family}: not IPv4 or IPv6")
    return _request(GET_TYPE, NLM_F_DUMP, seq, family)


def delete_request(seq: int, entry: ConntrackEvent) -> bytes:
    """Request `seq`: delete `entry` (its original tuple as the kernel sent it, and its
    id, so an entry that went and was replaced by a new one is left alone: ENOENT)."""
    if not entry.raw_tuple:
        raise ConntrackError("an entry without the kernel's tuple cannot be named")
    attrs = [attr(CTA_TUPLE_ORIG | NLA_F_NESTED, entry.raw_tuple)]
    if entry.id is not None:
        attrs.append(attr(CTA_ID, _U32.pack(entry.id)))
    if entry.zone is not None:
        attrs.append(attr(CTA_ZONE, _U16.pack(entry.zone)))
    return _request(DELETE_TYPE, NLM_F_ACK, seq, entry.family, *attrs)
