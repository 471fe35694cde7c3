"""The gateway's hot path: read a query's header and question only, answer from bytes.

`parse_question` never builds a `Message`. It returns None for anything it does
not handle cheaply (not a plain one-question QUERY, records other than one OPT,
names with octets other than letters, digits, '-' and '_', malformed bytes); the caller
then falls back to `decode_message`, which raises `DnsDecodeError` with the reason.
Responses are assembled by copying the query's question verbatim (so 0x20 case
mixing is echoed) and appending prebuilt records.
"""

import struct
from functools import lru_cache
from typing import NamedTuple

from ztsim.dns.wire.constants import (
    CLASSIC_UDP_LIMIT,
    EDNS_DO,
    FLAG_CD,
    FLAG_QR,
    FLAG_RA,
    FLAG_RD,
    HEADER_LEN,
    MAX_NAME_WIRE,
    SERVER_UDP_PAYLOAD,
    Rcode,
    RRType,
)
from ztsim.dns.wire.edns import ExtendedError

_HEADER = struct.Struct("!HHHHHH")
_U16_PAIR = struct.Struct("!HH")
_OPT_AFTER_NAME = struct.Struct("!HHIH")  # TYPE, CLASS (payload size), TTL (flags), RDLENGTH
_NOT_PLAIN_QUERY = 0xF800  # QR set or OPCODE other than QUERY (RFC 1035 §4.1.1)
_HOSTNAME_OCTETS = b"abcdefghijklmnopqrstuvwxyz0123456789-_."
_MAX_LABEL = 63  # RFC 1035 §2.3.4; larger length octets are pointers or reserved types


class QuestionView(NamedTuple):
    """What the hot path needs from a query. A NamedTuple: cheap to build per packet."""

    id: int
    flags: int  # the 16-bit word after the ID
    qname: bytes  # lowercased [a-z0-9_-] labels joined by dots, no trailing dot; b"" for root
    qtype: int
    qclass: int
    question_end: int  # offset just after the question, to copy wire[12:question_end]
    has_edns: bool
    payload_size: int  # advertised UDP payload size, 0 without EDNS
    dnssec_ok: bool
    edns_version: int

    @property
    def name(self) -> str:
        return self.qname.decode("ascii")


def parse_question(wire: bytes) -> QuestionView | None:
    """Header and first question of a plain query, or None to take the slow path."""
    size = len(wire)
    if size < HEADER_LEN + 5:
        return None
    ident, word, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if word & _NOT_PLAIN_QUERY or qdcount != 1 or ancount or nscount or arcount > 1:
        return None
    labels = []
    pos = HEADER_LEN
    length = wire[pos]
    while length:
        if length > _MAX_LABEL:
            return None
        start = pos + 1
        pos = start + length
        if pos >= size:
            return None
        labels.append(wire[start:pos])
        length = wire[pos]
    pos += 1
    if pos - HEADER_LEN > MAX_NAME_WIRE or pos + 4 > size:
        return None
    qtype, qclass = _U16_PAIR.unpack_from(wire, pos)
    pos += 4
    qname = b".".join(labels).lower()
    # Only hostname-like octets stay on the fast path (a C-speed check); a dot inside
    # a label would change the name's suffixes, so such names go the slow way too.
    if qname.translate(None, _HOSTNAME_OCTETS) or (qname.count(b".") != len(labels) - 1 and labels):
        return None
    if not arcount:
        if pos != size:
            return None
        return QuestionView(ident, word, qname, qtype, qclass, pos, False, 0, False, 0)
    # RFC 6891 §6.1.2: root owner, TYPE 41, CLASS = payload size, TTL = ext-rcode/version/flags.
    if pos + 11 > size or wire[pos] != 0:
        return None
    rtype, payload, ttl, rdlength = _OPT_AFTER_NAME.unpack_from(wire, pos + 1)
    if rtype != RRType.OPT or pos + 11 + rdlength != size:
        return None
    option = pos + 11
    while option < size:  # RFC 6891 §6.1.2: {code, length, data} options filling RDATA exactly
        if option + 4 > size:
            return None
        option += 4 + ((wire[option + 2] << 8) | wire[option + 3])
    if option != size:
        return None
    return QuestionView(
        ident,
        word,
        qname,
        qtype,
        qclass,
        pos,
        True,
        payload,
        bool(ttl & EDNS_DO),
        (ttl >> 16) & 0xFF,
    )


def udp_limit(view: QuestionView, server_max: int = SERVER_UDP_PAYLOAD) -> int:
    """Largest UDP response for this client (RFC 1035 §4.2.1, RFC 6891 §6.2.3/§6.2.5)."""
    if not view.has_edns:
        return CLASSIC_UDP_LIMIT
    return max(CLASSIC_UDP_LIMIT, min(view.payload_size, server_max))


@lru_cache(maxsize=1024)
def opt_record(dnssec_ok: bool, ede_code: int | None = None, ede_text: str = "") -> bytes:
    """Our OPT RR for a response: payload size, DO echoed (RFC 3225 §3), maybe one EDE."""
    options = b""
    if ede_code is not None:
        option = ExtendedError(ede_code, ede_text).to_option()
        options = _U16_PAIR.pack(option.code, len(option.data)) + option.data
    flags = EDNS_DO if dnssec_ok else 0
    return (
        b"\x00"
        + _OPT_AFTER_NAME.pack(RRType.OPT, SERVER_UDP_PAYLOAD, flags, len(options))
        + options
    )


def response_head(view: QuestionView, rcode: int, ancount: int, arcount: int) -> bytes:
    """Header of our answer to `view`: QR and RA set, RD and CD echoed (RFC 1035 §4.1.1)."""
    word = FLAG_QR | FLAG_RA | (view.flags & (FLAG_RD | FLAG_CD)) | rcode
    return _HEADER.pack(view.id, word, 1, ancount, 0, arcount)


def simple_response(
    query_wire: bytes,
    view: QuestionView,
    rcode: int,
    ede_code: int | None = None,
    ede_text: str = "",
) -> bytes:
    """Header, the query's question, and an OPT (with the EDE) if the client sent EDNS.

    RFC 6891 §7: no OPT goes to a client that sent none, so such a client gets
    no EDE either; RFC 8914 §3 defines EDE only inside OPT.
    """
    question = query_wire[HEADER_LEN : view.question_end]
    if not view.has_edns:
        return response_head(view, rcode, 0, 0) + question
    opt = opt_record(view.dnssec_ok, ede_code, ede_text)
    return response_head(view, rcode, 0, 1) + question + opt


def refused(
    query_wire: bytes, view: QuestionView, ede_code: int | None = None, ede_text: str = ""
) -> bytes:
    return simple_response(query_wire, view, Rcode.REFUSED, ede_code, ede_text)


def servfail(
    query_wire: bytes, view: QuestionView, ede_code: int | None = None, ede_text: str = ""
) -> bytes:
    return simple_response(query_wire, view, Rcode.SERVFAIL, ede_code, ede_text)


def badvers(query_wire: bytes, view: QuestionView) -> bytes:
    """RFC 6891 §6.1.3: BADVERS (16) is 0 in the header and 1 in the OPT's extended RCODE."""
    head = response_head(view, 0, 0, 1)
    opt = bytearray(opt_record(view.dnssec_ok))
    opt[5] = Rcode.BADVERS >> 4
    return head + query_wire[HEADER_LEN : view.question_end] + bytes(opt)


def formerr(query_wire: bytes) -> bytes | None:
    """FORMERR with the ID, OPCODE and RD echoed and no sections; None to stay silent.

    Silent for anything shorter than a header and for responses (QR set), so a
    forged packet cannot start a loop between two servers.
    """
    if len(query_wire) < HEADER_LEN:
        return None
    ident, word = _U16_PAIR.unpack_from(query_wire)
    if word & FLAG_QR:
        return None
    reply = FLAG_QR | FLAG_RA | (word & (0x7800 | FLAG_RD)) | Rcode.FORMERR
    return _HEADER.pack(ident, reply, 0, 0, 0, 0)
