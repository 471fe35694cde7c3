"""Stored answers that are replayed with a new ID and aged TTLs, without a parse.

`CachedAnswer.from_wire` walks an upstream response once, drops its OPT (OPT
is per client: the replay appends the right one) and keeps the offset and value
of every TTL. `patch_id_and_ttls` is then a copy plus one 4-octet write per
record.
"""

import struct
from dataclasses import dataclass, replace

from ztsim.dns.wire._scan import scan
from ztsim.dns.wire.constants import FLAG_CD, FLAG_RD, HEADER_LEN, RRType
from ztsim.dns.wire.errors import DnsDecodeError, DnsEncodeError
from ztsim.dns.wire.message import decode_message, encode_message

_TTL = struct.Struct("!I")
_ID = struct.Struct("!H")
_MAX_SIGNED_TTL = 0x7FFFFFFF  # RFC 2181 §8: a TTL with the top bit set is read as zero
_ARCOUNT_AT = 10


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A response without OPT, with where its TTLs are and what they were when stored."""

    wire: bytes
    question_end: int
    ttl_offsets: tuple[int, ...]
    ttls: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.ttl_offsets) != len(self.ttls):
            raise DnsEncodeError("one TTL per offset")
        if any(not HEADER_LEN <= o <= len(self.wire) - 4 for o in self.ttl_offsets):
            raise DnsEncodeError("TTL offset outside the message")

    @property
    def min_ttl(self) -> int:
        """Seconds the whole answer stays fresh; 0 for an answer with no records."""
        return min(self.ttls, default=0)

    @classmethod
    def from_wire(cls, wire: bytes) -> "CachedAnswer":
        question_end, spans = scan(wire)
        opts = [span for span in spans if span.rtype == RRType.OPT]
        if len(opts) > 1 or any(span.section != 2 for span in opts):
            raise DnsDecodeError("OPT misplaced or repeated")
        if opts:
            if opts[0] is spans[-1]:
                # Nothing follows the OPT, so no later name can point past its start.
                body = bytearray(wire[: opts[0].start])
                struct.pack_into("!H", body, _ARCOUNT_AT, _arcount(body) - 1)
                wire = bytes(body)
            else:
                message = decode_message(wire)
                wire = encode_message(replace(message, edns=None, rcode=message.rcode & 0xF))
            question_end, spans = scan(wire)
        return cls(
            wire,
            question_end,
            tuple(span.ttl_offset for span in spans),
            tuple(span.ttl if span.ttl <= _MAX_SIGNED_TTL else 0 for span in spans),
        )


def _arcount(body: bytearray) -> int:
    return int.from_bytes(body[_ARCOUNT_AT : _ARCOUNT_AT + 2], "big")


def patch_id_and_ttls(
    cached: CachedAnswer,
    new_id: int,
    age_seconds: int,
    *,
    query_flags: int | None = None,
    question: bytes | None = None,
    opt: bytes = b"",
) -> bytes:
    """The stored answer with `new_id`, every TTL lowered by `age_seconds` (not below 0).

    `query_flags` copies the new query's RD and CD bits; `question` (the query's
    wire[12:question_end]) replaces the stored question so the client's letter
    case is echoed; `opt` (from `fast.opt_record`) is appended for EDNS clients.
    """
    buf = bytearray(cached.wire)
    _ID.pack_into(buf, 0, new_id)
    for offset, ttl in zip(cached.ttl_offsets, cached.ttls, strict=True):
        _TTL.pack_into(buf, offset, ttl - age_seconds if ttl > age_seconds else 0)
    if query_flags is not None:
        buf[2] = (buf[2] & ~(FLAG_RD >> 8)) | ((query_flags & FLAG_RD) >> 8)
        buf[3] = (buf[3] & ~FLAG_CD) | (query_flags & FLAG_CD)
    if question is not None:
        if len(question) != cached.question_end - HEADER_LEN:
            raise DnsEncodeError("replacement question differs in length from the stored one")
        buf[HEADER_LEN : cached.question_end] = question
    if opt:
        buf += opt
        struct.pack_into("!H", buf, _ARCOUNT_AT, _arcount(buf) + 1)
    return bytes(buf)
