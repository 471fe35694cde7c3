"""Fitting a UDP response to the client's limit (RFC 1035 §4.2.1, RFC 6891 §7, RFC 2181 §9)."""

import struct

from ztsim.dns.wire._scan import scan
from ztsim.dns.wire.constants import CLASSIC_UDP_LIMIT, FLAG_TC, HEADER_LEN, RRType

_HEADER = struct.Struct("!HHHHHH")


def truncate(response: bytes, limit: int) -> bytes:
    """`response` if it fits in `limit` octets; else header, questions and OPT, with TC set.

    Partial record sets are useless to a resolver that will retry over TCP
    (RFC 2181 §9), so every record but OPT goes; OPT stays so the client still
    sees EDNS (and any EDE). Limits below 512 are raised to 512 (RFC 6891 §6.2.5).
    Malformed input raises `DnsDecodeError`.
    """
    limit = max(limit, CLASSIC_UDP_LIMIT)
    if len(response) <= limit:
        return response
    question_end, spans = scan(response)
    ident, word, qdcount, _, _, _ = _HEADER.unpack_from(response)
    opt = b""
    for span in spans:
        if span.rtype == RRType.OPT and span.section == 2:
            opt = response[span.start : span.end]
            break
    questions = response[HEADER_LEN:question_end]
    if HEADER_LEN + len(questions) + len(opt) > limit:
        opt = b""
    if HEADER_LEN + len(questions) > limit:
        questions, qdcount = b"", 0
    head = _HEADER.pack(ident, word | FLAG_TC, qdcount, 0, 0, 1 if opt else 0)
    return head + questions + opt
