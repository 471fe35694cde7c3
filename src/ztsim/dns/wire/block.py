"""Answers for blocked names, built from prebuilt record bytes.

Decisions (documented for the gateway):
- NULL_IP answers A with 0.0.0.0 and AAAA with :: ; ADDRESS answers with a block
  page's addresses (a family without an address gets NODATA). Other query types
  and classes get `other_types` (default NODATA: an empty NOERROR answer, which
  stub resolvers accept without retrying elsewhere, unlike REFUSED).
- The EDE (RFC 8914, default 15 Blocked) rides in OPT, so only clients that
  sent OPT get it; we never add OPT for a client that did not (RFC 6891 §7).
- Negative answers carry no SOA, so downstream caches do not keep them
  (RFC 2308 §5): a policy change reaches the SIM at once.
"""

import enum
import struct
from functools import lru_cache

from ztsim.dns.wire._rdata import address_rdata
from ztsim.dns.wire.constants import HEADER_LEN, EdeCode, Rcode, RRClass, RRType
from ztsim.dns.wire.errors import DnsEncodeError
from ztsim.dns.wire.fast import QuestionView, opt_record, response_head

_ANSWER_FIXED = struct.Struct("!HHHIH")  # pointer to offset 12, TYPE, CLASS, TTL, RDLENGTH
_POINTER_TO_QNAME = 0xC000 | HEADER_LEN  # RFC 1035 §4.1.4: the question name sits at 12
DEFAULT_BLOCK_TTL = 60  # short, so unblocking takes effect within a minute


class BlockMode(enum.Enum):
    NULL_IP = "null_ip"
    ADDRESS = "address"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    REFUSED = "refused"


_NEGATIVE = {
    BlockMode.NXDOMAIN: Rcode.NXDOMAIN,
    BlockMode.NODATA: Rcode.NOERROR,
    BlockMode.REFUSED: Rcode.REFUSED,
}

# (rcode, answer record bytes) for A, for AAAA, and for anything else.
_Plan = tuple[tuple[int, bytes], tuple[int, bytes], tuple[int, bytes]]


def _address_answer(rtype: int, address: str | None, ttl: int) -> tuple[int, bytes]:
    if address is None:
        return Rcode.NOERROR, b""
    family, rdata = address_rdata(address)
    if family != rtype:
        raise DnsEncodeError(f"block address {address!r} is not of type {rtype}")
    fixed = _ANSWER_FIXED.pack(_POINTER_TO_QNAME, rtype, RRClass.IN, ttl, len(rdata))
    return Rcode.NOERROR, fixed + rdata


@lru_cache(maxsize=256)
def _plan(mode: BlockMode, ttl: int, ipv4: str | None, ipv6: str | None, other: BlockMode) -> _Plan:
    if other not in _NEGATIVE:
        raise DnsEncodeError("other_types must be NXDOMAIN, NODATA or REFUSED")
    other_answer = (_NEGATIVE[other], b"")
    if mode in _NEGATIVE:
        answer = (_NEGATIVE[mode], b"")
        return answer, answer, answer
    if mode is BlockMode.NULL_IP:
        ipv4, ipv6 = "0.0.0.0", "::"  # noqa: S104 - the sinkhole address, not a bind address
    return (
        _address_answer(RRType.A, ipv4, ttl),
        _address_answer(RRType.AAAA, ipv6, ttl),
        other_answer,
    )


def block_response(
    query_wire: bytes,
    view: QuestionView,
    mode: BlockMode = BlockMode.NULL_IP,
    ede_code: int | None = EdeCode.BLOCKED,
    ede_text: str = "",
    *,
    ttl: int = DEFAULT_BLOCK_TTL,
    ipv4: str | None = None,
    ipv6: str | None = None,
    other_types: BlockMode = BlockMode.NODATA,
) -> bytes:
    """The blocked answer to the query `view` was parsed from; see the module notes."""
    plan = _plan(mode, ttl, ipv4, ipv6, other_types)
    if view.qclass != RRClass.IN:
        rcode, answer = plan[2]
    elif view.qtype == RRType.A:
        rcode, answer = plan[0]
    elif view.qtype == RRType.AAAA:
        rcode, answer = plan[1]
    else:
        rcode, answer = plan[2]
    ancount = 1 if answer else 0
    question = query_wire[HEADER_LEN : view.question_end]
    if not view.has_edns:
        return response_head(view, rcode, ancount, 0) + question + answer
    opt = opt_record(view.dnssec_ok, ede_code, ede_text)
    return response_head(view, rcode, ancount, 1) + question + answer + opt
