"""Netlink framing for netfilter's subsystems, without I/O: the headers, the 4-octet
alignment, attributes, and the acknowledgements, shared by the NFLOG codec
(`ztsim.net.nflog`) and the conntrack codec (`ztsim.net.ctnetlink`).

Sources: netlink(7) and linux/netlink.h (nlmsghdr, nlattr and nlmsgerr in host byte
order, NLMSG_ALIGN / NLA_ALIGN to 4 octets), linux/netfilter/nfnetlink.h (nfgenmsg, its
res_id big-endian). A caller names the error its own codec raises for malformed input.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from ztsim.errors import InvalidInput

NETLINK_NETFILTER = 12  # linux/netlink.h: the socket's protocol
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x01, 0x02, 0x04  # linux/netlink.h
NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 1, 2, 3, 4  # linux/netlink.h
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
NLA_F_NESTED = 0x8000

NLMSG = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
NFGEN = struct.Struct("!BBH")  # nfgenmsg: family, version, res_id (big-endian)
NLATTR = struct.Struct("=HH")  # nlattr: len, type
_ERRNO = struct.Struct("=i")  # nlmsgerr: error, then the request's header

Malformed = type[InvalidInput]


@dataclass(frozen=True, slots=True)
class Ack:
    """The kernel's answer to request `seq`: error 0, or a negative errno."""

    seq: int
    error: int


def align(n: int) -> int:
    return (n + 3) & ~3  # NLMSG_ALIGN / NLA_ALIGN


def attr(kind: int, value: bytes) -> bytes:
    """One attribute, padded to the alignment."""
    raw = NLATTR.pack(NLATTR.size + len(value), kind) + value
    return raw + b"\0" * (align(len(raw)) - len(raw))


def request(kind: int, flags: int, seq: int, family: int, res_id: int, *attrs: bytes) -> bytes:
    """An nfnetlink request: nlmsghdr, nfgenmsg (version NFNETLINK_V0), attributes."""
    body = NFGEN.pack(family, 0, res_id) + b"".join(attrs)
    return NLMSG.pack(NLMSG.size + len(body), kind, NLM_F_REQUEST | flags, seq, 0) + body


def messages(data: bytes, error: Malformed) -> Iterator[tuple[int, int, int, bytes]]:
    """(type, flags, seq, body) of each netlink message in a datagram."""
    offset = 0
    while offset < len(data):
        if len(data) - offset < NLMSG.size:
            raise error(f"{len(data) - offset} trailing octets: not a netlink header")
        length, kind, flags, seq, _ = NLMSG.unpack_from(data, offset)
        if length < NLMSG.size or offset + length > len(data):
            raise error(f"netlink message length {length} does not fit the datagram")
        yield kind, flags, seq, data[offset + NLMSG.size : offset + length]
        offset += align(length)


def attributes(
    data: bytes, error: Malformed, start: int = 0, end: int | None = None
) -> dict[int, bytes]:
    """Type (flags masked) -> value of each attribute in data[start:end]."""
    end = len(data) if end is None else end
    found: dict[int, bytes] = {}
    offset = start
    while end - offset >= NLATTR.size:
        length, kind = NLATTR.unpack_from(data, offset)
        if length < NLATTR.size or offset + length > end:
            raise error(f"attribute length {length} does not fit its message")
        found[kind & NLA_TYPE_MASK] = data[offset + NLATTR.size : offset + length]
        offset += align(length)
    return found


def ack(seq: int, body: bytes, error: Malformed) -> Ack:
    """An NLMSG_ERROR message's acknowledgement."""
    if len(body) < _ERRNO.size:
        raise error("netlink error message shorter than its error code")
    return Ack(seq, _ERRNO.unpack_from(body)[0])
