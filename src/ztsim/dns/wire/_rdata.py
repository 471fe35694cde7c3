"""RDATA fields that hold domain names, which may be compressed (RFC 3597 §4).

Decoding expands every pointer, so a `ResourceRecord` always holds stand-alone
RDATA that can be copied into any message. Encoding compresses only the types
RFC 3597 §4 allows (those of RFC 1035); the others are written expanded.
"""

import ipaddress

from ztsim.dns.wire._wirename import Labels, decode_name, encode_name
from ztsim.dns.wire.constants import MAX_LABEL, MAX_NAME_WIRE, RRType
from ztsim.dns.wire.errors import DnsDecodeError, DnsEncodeError

NAME = -1  # a field that is a domain name; other fields are a fixed count of octets

_LAYOUTS: dict[int, tuple[int, ...]] = {
    RRType.NS: (NAME,),
    RRType.MD: (NAME,),
    RRType.MF: (NAME,),
    RRType.CNAME: (NAME,),
    RRType.MB: (NAME,),
    RRType.MG: (NAME,),
    RRType.MR: (NAME,),
    RRType.PTR: (NAME,),
    RRType.SOA: (NAME, NAME, 20),  # RFC 1035 §3.3.13: MNAME, RNAME, five 32-bit fields
    RRType.MINFO: (NAME, NAME),
    RRType.MX: (2, NAME),  # RFC 1035 §3.3.9
    # RFC 3597 §4: receivers must also expand these, though senders must not compress them.
    RRType.RP: (NAME, NAME),
    RRType.AFSDB: (2, NAME),
    RRType.RT: (2, NAME),
    RRType.PX: (2, NAME, NAME),
    RRType.SRV: (6, NAME),  # RFC 2782: priority, weight, port, target
}
_COMPRESSIBLE = frozenset(
    int(t)
    for t in (
        RRType.NS,
        RRType.MD,
        RRType.MF,
        RRType.CNAME,
        RRType.SOA,
        RRType.MB,
        RRType.MG,
        RRType.MR,
        RRType.PTR,
        RRType.MINFO,
        RRType.MX,
    )
)
_FIXED_SIZE = {int(RRType.A): 4, int(RRType.AAAA): 16}  # RFC 1035 §3.4.1, RFC 3596 §2.2


def expand_rdata(wire: bytes, start: int, length: int, rtype: int) -> bytes:
    """Return RDATA at `start` with name pointers expanded; check it fills RDLENGTH exactly."""
    end = start + length
    layout = _LAYOUTS.get(rtype)
    if layout is None:
        return wire[start:end]
    out = bytearray()
    pos = start
    for field in layout:
        if field == NAME:
            labels, pos = decode_name(wire, pos)
            if pos > end:
                raise DnsDecodeError(f"name in type {rtype} RDATA runs past RDLENGTH")
            encode_name(labels, out, None)
        else:
            if pos + field > end:
                raise DnsDecodeError(f"type {rtype} RDATA shorter than its fields")
            out += wire[pos : pos + field]
            pos += field
    if pos != end:
        raise DnsDecodeError(f"type {rtype} RDATA longer than its fields")
    return bytes(out)


def _plain_name(rdata: bytes, pos: int) -> tuple[Labels, int]:
    labels: list[bytes] = []
    total = 1
    while True:
        if pos >= len(rdata):
            raise DnsEncodeError("name in RDATA cut short")
        length = rdata[pos]
        if length == 0:
            return tuple(labels), pos + 1
        if length > MAX_LABEL:
            raise DnsEncodeError("stored RDATA must hold uncompressed names")
        total += length + 1
        if total > MAX_NAME_WIRE or pos + 1 + length > len(rdata):
            raise DnsEncodeError("name in RDATA too long or cut short")
        labels.append(rdata[pos + 1 : pos + 1 + length])
        pos += 1 + length


def split_rdata(rtype: int, rdata: bytes) -> list[Labels | bytes] | None:
    """Check stand-alone RDATA; return its name and fixed fields, or None if it is opaque."""
    size = _FIXED_SIZE.get(rtype)
    if size is not None and len(rdata) != size:
        raise DnsEncodeError(f"type {rtype} RDATA must be {size} octets, got {len(rdata)}")
    layout = _LAYOUTS.get(rtype)
    if layout is None:
        return None
    fields: list[Labels | bytes] = []
    pos = 0
    for field in layout:
        if field == NAME:
            labels, pos = _plain_name(rdata, pos)
            fields.append(labels)
        else:
            if pos + field > len(rdata):
                raise DnsEncodeError(f"type {rtype} RDATA shorter than its fields")
            fields.append(rdata[pos : pos + field])
            pos += field
    if pos != len(rdata):
        raise DnsEncodeError(f"type {rtype} RDATA longer than its fields")
    return fields


def write_rdata(rtype: int, rdata: bytes, out: bytearray, table: dict[Labels, int]) -> None:
    """Append RDATA to `out`, compressing its names when the type allows it."""
    if rtype not in _COMPRESSIBLE:
        out += rdata
        return
    fields = split_rdata(rtype, rdata)
    assert fields is not None  # every compressible type has a layout
    for field in fields:
        if isinstance(field, tuple):
            encode_name(field, out, table)
        else:
            out += field


def address_rdata(address: str) -> tuple[int, bytes]:
    """(TYPE, RDATA) of an A or AAAA record for a textual IP address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise DnsEncodeError(f"{address!r} is not an IP address") from None
    if ip.version == 4:
        return RRType.A, ip.packed
    return RRType.AAAA, ip.packed
