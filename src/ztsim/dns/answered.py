"""What an answer told its requester: the addresses a name resolved to, and for how long.

The net role opens a `network` rule's `domains` to the addresses the DNS gateway gave
for them (`ztsim.net.fqdn`), so the gateway reads each A/AAAA answer it sends once, here:
a NOERROR response (RFC 1035 §4.1.1) to one IN question of type A or AAAA, whose answer
section holds addresses for the asked name, directly or at the end of its CNAME chain
(RFC 1034 §3.6.2, §4.3.2). Records for other names are not the question's: an upstream
that adds them does not open anything. The TTL is the smallest of the records used (the
answer is only as good as its shortest-lived link). Unspecified addresses (a block's
0.0.0.0 and ::) are left out. Anything else, or a message that does not parse, is None: learning is best effort and never fails an answer. Pure.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

from ztsim.dns.wire._wirename import decode_name
from ztsim.dns.wire.constants import HEADER_LEN, Rcode, RRClass, RRType
from ztsim.dns.wire.errors import DnsDecodeError

_HEADER = struct.Struct("!HHHHHH")
_TYPE_CLASS_TTL_LEN = struct.Struct("!HHIH")
_QR = 0x8000  # RFC 1035 §4.1.1: a response
_OPCODE = 0x7800
_ADDRESS_LENGTH = {RRType.A: 4, RRType.AAAA: 16}
MAX_CHAIN = 16  # CNAME links followed: resolvers give up on longer chains too
MAX_TTL = 0x7FFFFFFF  # RFC 2181 §8: a TTL with the top bit set is read as 0


class Resolved(NamedTuple):
    qname: str  # the asked name: lower case, no final dot
    addresses: tuple[str, ...]
    ttl: int


def _key(labels: tuple[bytes, ...]) -> bytes:
    return b".".join(labels).lower()


def resolved(wire: bytes) -> Resolved | None:
    """The asked name, the addresses the answer gives for it and their TTL; None if the
    message is not such an answer (see the module's docstring)."""
    if len(wire) < HEADER_LEN:
        return None
    _, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(wire)
    if not flags & _QR or flags & _OPCODE or flags & 0xF != Rcode.NOERROR:
        return None
    if qdcount != 1 or not ancount:
        return None
    try:
        return _walk(wire, ancount)
    except (DnsDecodeError, struct.error, ValueError):
        return None


def _walk(wire: bytes, ancount: int) -> Resolved | None:
    labels, pos = decode_name(wire, HEADER_LEN)
    qtype, qclass = struct.unpack_from("!HH", wire, pos)
    if qclass != RRClass.IN or qtype not in _ADDRESS_LENGTH:
        return None
    pos += 4
    aliases: dict[bytes, tuple[bytes, int]] = {}  # owner -> (CNAME target, TTL)
    found: dict[bytes, list[tuple[bytes, int]]] = {}  # owner -> [(address octets, TTL)]
    for _ in range(ancount):
        owner, pos = decode_name(wire, pos)
        rtype, rclass, ttl, rdlength = _TYPE_CLASS_TTL_LEN.unpack_from(wire, pos)
        start = pos + 10
        end = start + rdlength
        if end > len(wire):
            return None
        ttl = 0 if ttl > MAX_TTL else ttl
        if rclass == RRClass.IN and rtype == qtype and rdlength == _ADDRESS_LENGTH[qtype]:
            found.setdefault(_key(owner), []).append((wire[start:end], ttl))
        elif rclass == RRClass.IN and rtype == RRType.CNAME:
            target, _ = decode_name(wire, start)
            aliases.setdefault(_key(owner), (_key(target), ttl))
        pos = end
    name = qname = _key(labels)
    ttl = MAX_TTL
    for _ in range(MAX_CHAIN):
        if name in found or name not in aliases:
            break
        name, link = aliases[name]
        ttl = min(ttl, link)
    records = found.get(name)
    if not records:
        return None
    # 0.0.0.0 and :: are what a block answers with (and never a destination): not learned.
    ips = (ipaddress.ip_address(octets) for octets, _ in records)
    addresses = tuple(dict.fromkeys(str(ip) for ip in ips if not ip.is_unspecified))
    if not addresses:
        return None
    ttl = min(ttl, *(t for _, t in records))
    return Resolved(qname.decode("ascii", "backslashreplace"), addresses, ttl)
