"""Walk a message's records without building values: offsets only."""

import struct
from typing import NamedTuple

from ztsim.dns.wire._wirename import decode_name
from ztsim.dns.wire.constants import HEADER_LEN
from ztsim.dns.wire.errors import DnsDecodeError

_HEADER = struct.Struct("!HHHHHH")
_TYPE_CLASS_TTL_LEN = struct.Struct("!HHIH")


class RecordSpan(NamedTuple):
    start: int  # first octet of the owner name
    rtype: int
    ttl_offset: int
    ttl: int
    end: int  # just after the RDATA
    section: int  # 0 answer, 1 authority, 2 additional


def scan(wire: bytes) -> tuple[int, list[RecordSpan]]:
    """Offset after the questions, and one span per record; malformed: `DnsDecodeError`."""
    if len(wire) < HEADER_LEN:
        raise DnsDecodeError("message shorter than the 12-octet header")
    _, _, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    pos = HEADER_LEN
    for _ in range(qdcount):
        _, pos = decode_name(wire, pos)
        pos += 4
        if pos > len(wire):
            raise DnsDecodeError("question cut short")
    question_end = pos
    spans = []
    for section, count in enumerate((ancount, nscount, arcount)):
        for _ in range(count):
            start = pos
            _, pos = decode_name(wire, pos)
            if pos + 10 > len(wire):
                raise DnsDecodeError("resource record header cut short")
            rtype, _, ttl, rdlength = _TYPE_CLASS_TTL_LEN.unpack_from(wire, pos)
            end = pos + 10 + rdlength
            if end > len(wire):
                raise DnsDecodeError("RDATA runs past the end of the message")
            spans.append(RecordSpan(start, rtype, pos + 4, ttl, end, section))
            pos = end
    if pos != len(wire):
        raise DnsDecodeError(f"{len(wire) - pos} octets after the last record")
    return question_end, spans
