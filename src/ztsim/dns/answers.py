"""Override answers: given addresses, or a CNAME (optionally followed by the target's records).

Address answers are built from record bytes like block answers. A CNAME answer
that carries the target's records goes through the full codec (it is rare:
overrides and safe search), with the client's question copied back in so its
letter case is echoed.
"""

from __future__ import annotations

import struct

from ztsim.dns.wire._rdata import address_rdata
from ztsim.dns.wire._wirename import encode_name, text_to_labels
from ztsim.dns.wire.constants import HEADER_LEN, Rcode, RRClass, RRType
from ztsim.dns.wire.edns import Edns
from ztsim.dns.wire.errors import DnsDecodeError
from ztsim.dns.wire.fast import QuestionView, opt_record, response_head
from ztsim.dns.wire.message import Flag, Message, Question, ResourceRecord, decode_message

OVERRIDE_TTL = 60
_RECORD_FIXED = struct.Struct("!HHHIH")  # pointer to the question name, TYPE, CLASS, TTL, RDLENGTH
_POINTER_TO_QNAME = 0xC000 | HEADER_LEN  # RFC 1035 §4.1.4


def _finish(wire: bytes, view: QuestionView, rcode: int, records: list[bytes]) -> bytes:
    question = wire[HEADER_LEN : view.question_end]
    body = question + b"".join(records)
    if not view.has_edns:
        return response_head(view, rcode, len(records), 0) + body
    return response_head(view, rcode, len(records), 1) + body + opt_record(view.dnssec_ok)


def address_response(
    wire: bytes, view: QuestionView, addresses: tuple[str, ...], ttl: int = OVERRIDE_TTL
) -> bytes:
    """A/AAAA records for the addresses of the asked family; NODATA for other types."""
    records = []
    if view.qclass == RRClass.IN and view.qtype in (RRType.A, RRType.AAAA):
        for address in addresses:
            rtype, rdata = address_rdata(address)
            if rtype == view.qtype:
                fixed = _RECORD_FIXED.pack(_POINTER_TO_QNAME, rtype, RRClass.IN, ttl, len(rdata))
                records.append(fixed + rdata)
    return _finish(wire, view, Rcode.NOERROR, records)


def cname_record(target: str, ttl: int = OVERRIDE_TTL) -> bytes:
    rdata = bytearray()
    encode_name(text_to_labels(target), rdata, None)
    fixed = _RECORD_FIXED.pack(_POINTER_TO_QNAME, RRType.CNAME, RRClass.IN, ttl, len(rdata))
    return fixed + bytes(rdata)


def cname_response(
    wire: bytes,
    view: QuestionView,
    target: str,
    target_answer: bytes | None = None,
    ttl: int = OVERRIDE_TTL,
) -> bytes:
    """CNAME `target`, then the target's answer records if an upstream answer is given."""
    if target_answer is None or view.qtype == RRType.CNAME:
        return _finish(wire, view, Rcode.NOERROR, [cname_record(target, ttl)])
    try:
        chased = decode_message(target_answer)
    except DnsDecodeError:
        return _finish(wire, view, Rcode.NOERROR, [cname_record(target, ttl)])
    first = ResourceRecord.with_name(view.name, RRType.CNAME, target, ttl)
    flags = Flag.QR | Flag.RA | (Flag(view.flags & Flag.RD)) | (Flag(view.flags & Flag.CD))
    message = Message(
        id=view.id,
        flags=flags,
        rcode=chased.rcode & 0xF,
        questions=(Question(view.name, view.qtype, view.qclass),),
        answers=(first, *chased.answers),
        edns=Edns(dnssec_ok=view.dnssec_ok) if view.has_edns else None,
    )
    out = bytearray(message.to_wire())
    out[HEADER_LEN : view.question_end] = wire[HEADER_LEN : view.question_end]
    return bytes(out)
