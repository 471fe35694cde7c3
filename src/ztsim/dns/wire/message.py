"""DNS messages as immutable values, and their full codec (RFC 1035 §4).

This is the slow, complete path: the gateway's hot path reads only the header
and the question (`ztsim.dns.wire.fast`) and uses this module for everything else.
"""

import enum
import struct
from dataclasses import dataclass

from ztsim.dns.wire._rdata import address_rdata, expand_rdata, split_rdata, write_rdata
from ztsim.dns.wire._wirename import (
    Labels,
    decode_name,
    encode_name,
    labels_to_text,
    text_to_labels,
)
from ztsim.dns.wire.constants import HEADER_LEN, MAX_TTL, RRClass, RRType
from ztsim.dns.wire.edns import Edns, edns_from_rr
from ztsim.dns.wire.errors import DnsDecodeError, DnsEncodeError

_HEADER = struct.Struct("!HHHHHH")  # RFC 1035 §4.1.1
_QUESTION_TAIL = struct.Struct("!HH")  # RFC 1035 §4.1.2
_RR_FIXED = struct.Struct("!HHIH")  # RFC 1035 §4.1.3: TYPE, CLASS, TTL, RDLENGTH
_OPCODE_SHIFT = 11
_OPCODE_MASK = 0x7800
_RCODE_MASK = 0x000F


class Flag(enum.IntFlag):
    """Header flag bits (RFC 1035 §4.1.1; AD and CD from RFC 4035 §3.2)."""

    QR = 0x8000
    AA = 0x0400
    TC = 0x0200
    RD = 0x0100
    RA = 0x0080
    Z = 0x0040
    AD = 0x0020
    CD = 0x0010


_FLAG_BITS = 0x87F0
_NO_FLAGS = Flag(0)


def _u16(what: str, value: object) -> int:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise DnsEncodeError(f"{what} {value!r} is not a 16-bit unsigned integer")
    return value


@dataclass(frozen=True, slots=True)
class Question:
    """One entry of the question section (RFC 1035 §4.1.2)."""

    name: str
    qtype: int
    qclass: int = RRClass.IN

    def __post_init__(self) -> None:
        text_to_labels(self.name)
        _u16("QTYPE", self.qtype)
        _u16("QCLASS", self.qclass)


@dataclass(frozen=True, slots=True)
class ResourceRecord:
    """One resource record (RFC 1035 §4.1.3) with stand-alone (uncompressed) RDATA."""

    name: str
    rtype: int
    rclass: int
    ttl: int
    rdata: bytes

    def __post_init__(self) -> None:
        text_to_labels(self.name)
        _u16("TYPE", self.rtype)
        _u16("CLASS", self.rclass)
        if self.rtype == RRType.OPT:
            raise DnsEncodeError("OPT is carried as Message.edns, not as a record")
        if not isinstance(self.ttl, int) or not 0 <= self.ttl <= MAX_TTL:
            raise DnsEncodeError(f"TTL {self.ttl!r} is not a 32-bit unsigned integer")
        if not isinstance(self.rdata, bytes) or len(self.rdata) > 0xFFFF:
            raise DnsEncodeError("RDATA must be bytes of at most 65535 octets")
        split_rdata(self.rtype, self.rdata)

    @classmethod
    def address(cls, name: str, address: str, ttl: int) -> "ResourceRecord":
        """An IN A or AAAA record, chosen by the address family."""
        rtype, rdata = address_rdata(address)
        return cls(name, rtype, RRClass.IN, ttl, rdata)

    @classmethod
    def with_name(cls, name: str, rtype: int, target: str, ttl: int) -> "ResourceRecord":
        """An IN record whose RDATA is one name (CNAME, NS, PTR...)."""
        out = bytearray()
        encode_name(text_to_labels(target), out, None)
        return cls(name, rtype, RRClass.IN, ttl, bytes(out))


@dataclass(frozen=True, slots=True)
class Message:
    """A whole DNS message. `rcode` is the full 12-bit code; values over 15 need `edns`."""

    id: int
    flags: Flag = _NO_FLAGS
    opcode: int = 0
    rcode: int = 0
    questions: tuple[Question, ...] = ()
    answers: tuple[ResourceRecord, ...] = ()
    authorities: tuple[ResourceRecord, ...] = ()
    additionals: tuple[ResourceRecord, ...] = ()
    edns: Edns | None = None

    def __post_init__(self) -> None:
        _u16("ID", self.id)
        if not isinstance(self.flags, int) or self.flags & ~_FLAG_BITS:
            raise DnsEncodeError(f"flags {self.flags!r} hold bits outside the flag positions")
        if not isinstance(self.opcode, int) or not 0 <= self.opcode <= 15:
            raise DnsEncodeError(f"OPCODE {self.opcode!r} is not 4-bit")
        limit = 0xFFF if self.edns is not None else 0xF
        if not isinstance(self.rcode, int) or not 0 <= self.rcode <= limit:
            raise DnsEncodeError(f"RCODE {self.rcode!r} does not fit (EDNS gives 12 bits)")
        for what, items, kind in (
            ("questions", self.questions, Question),
            ("answers", self.answers, ResourceRecord),
            ("authorities", self.authorities, ResourceRecord),
            ("additionals", self.additionals, ResourceRecord),
        ):
            if not isinstance(items, tuple) or not all(isinstance(i, kind) for i in items):
                raise DnsEncodeError(f"{what} must be a tuple of {kind.__name__}")
            if len(items) > 0xFFFF:
                raise DnsEncodeError(f"too many {what}")
        if self.edns is not None and not isinstance(self.edns, Edns):
            raise DnsEncodeError("edns must be an Edns or None")
        if self.edns is not None and len(self.additionals) == 0xFFFF:
            raise DnsEncodeError("too many additionals to add OPT")

    def to_wire(self) -> bytes:
        return encode_message(self)


def encode_message(message: Message) -> bytes:
    """The wire form of `message`, owner and RFC 1035 RDATA names compressed."""
    word = int(message.flags) | (message.opcode << _OPCODE_SHIFT) | (message.rcode & _RCODE_MASK)
    extra = 1 if message.edns is not None else 0
    out = bytearray(
        _HEADER.pack(
            message.id,
            word,
            len(message.questions),
            len(message.answers),
            len(message.authorities),
            len(message.additionals) + extra,
        )
    )
    table: dict[Labels, int] = {}
    for question in message.questions:
        encode_name(text_to_labels(question.name), out, table)
        out += _QUESTION_TAIL.pack(question.qtype, question.qclass)
    for section in (message.answers, message.authorities, message.additionals):
        for record in section:
            encode_name(text_to_labels(record.name), out, table)
            fixed_at = len(out)
            out += _RR_FIXED.pack(record.rtype, record.rclass, record.ttl, 0)
            start = len(out)
            write_rdata(record.rtype, record.rdata, out, table)
            struct.pack_into("!H", out, fixed_at + 8, len(out) - start)
    if message.edns is not None:
        out += message.edns.to_wire(message.rcode >> 4)
    return bytes(out)


def decode_message(wire: bytes) -> Message:
    """Parse a whole message; anything malformed raises `DnsDecodeError` saying why."""
    if not isinstance(wire, bytes):
        raise DnsDecodeError(f"wire must be bytes, got {type(wire).__name__}")
    if len(wire) < HEADER_LEN:
        raise DnsDecodeError("message shorter than the 12-octet header")
    ident, word, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    pos = HEADER_LEN
    try:
        questions = []
        for _ in range(qdcount):
            labels, pos = decode_name(wire, pos)
            if pos + 4 > len(wire):
                raise DnsDecodeError("question cut short")
            qtype, qclass = _QUESTION_TAIL.unpack_from(wire, pos)
            pos += 4
            questions.append(Question(labels_to_text(labels), qtype, qclass))
        sections: list[list[ResourceRecord]] = [[], [], []]
        edns: Edns | None = None
        extended = 0
        for index, count in enumerate((ancount, nscount, arcount)):
            for _ in range(count):
                labels, pos = decode_name(wire, pos)
                if pos + 10 > len(wire):
                    raise DnsDecodeError("resource record header cut short")
                rtype, rclass, ttl, rdlength = _RR_FIXED.unpack_from(wire, pos)
                pos += 10
                if pos + rdlength > len(wire):
                    raise DnsDecodeError("RDATA runs past the end of the message")
                if rtype == RRType.OPT:
                    # RFC 6891 §6.1.1: one OPT, in the additional section, owned by the root.
                    if index != 2 or edns is not None or labels:
                        raise DnsDecodeError("OPT misplaced, repeated or not owned by the root")
                    edns, extended = edns_from_rr(rclass, ttl, wire[pos : pos + rdlength])
                else:
                    rdata = expand_rdata(wire, pos, rdlength, rtype)
                    name = labels_to_text(labels)
                    sections[index].append(ResourceRecord(name, rtype, rclass, ttl, rdata))
                pos += rdlength
        if pos != len(wire):
            raise DnsDecodeError(f"{len(wire) - pos} octets after the last record")
        return Message(
            id=ident,
            flags=Flag(word & _FLAG_BITS),
            opcode=(word & _OPCODE_MASK) >> _OPCODE_SHIFT,
            rcode=(extended << 4) | (word & _RCODE_MASK),
            questions=tuple(questions),
            answers=tuple(sections[0]),
            authorities=tuple(sections[1]),
            additionals=tuple(sections[2]),
            edns=edns,
        )
    except DnsDecodeError:
        raise
    except DnsEncodeError as error:
        # A field the wire allowed but our values refuse (e.g. a 3-octet A record).
        raise DnsDecodeError(str(error)) from None
