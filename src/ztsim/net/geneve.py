"""Geneve (RFC 8926) without I/O: the fixed header, its TLV options, encode and decode.

Values check themselves when made, so a `GeneveHeader` in hand always encodes. Decoding
normalises what RFC 8926 says to ignore on receipt (the reserved bits) and refuses what
it says to drop (an unknown version, lengths that do not add up) with `GeneveError`,
the only exception `decode` raises, whatever the bytes.

The per-packet path of a tunnel needs neither objects nor copies: `header_bytes` is
built once per (VNI, options) and prepended, and `parse` reads a datagram in place
(a memoryview) into plain numbers and offsets; `options_in` walks the options area only
when the caller needs it.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from ztsim.errors import InvalidInput

PORT = 6081  # RFC 8926 §3.3: the IANA-assigned UDP destination port
VERSION = 0  # RFC 8926 §3.4: the only version; an unknown one MUST be dropped
HEADER_LENGTH = 8  # RFC 8926 §3.4: the fixed header before the options
OPTION_HEADER_LENGTH = 4  # RFC 8926 §3.5: class, type, R bits and length
MAX_OPTIONS_LENGTH = 63 * 4  # RFC 8926 §3.4: Opt Len is 6 bits of 4-octet words
MAX_OPTION_DATA = 31 * 4  # RFC 8926 §3.5: Length is 5 bits of 4-octet words
MAX_VNI = 0xFFFFFF  # RFC 8926 §3.4: the VNI is 24 bits
CRITICAL_TYPE = 0x80  # RFC 8926 §3.5: the high bit of Type marks a critical option
EXPERIMENTAL_CLASSES = range(0xFF00, 0x10000)  # RFC 8926 §7 (IANA): Experimental Use
PROTOCOL_IPV4 = 0x0800  # RFC 8926 §3.4: Protocol Type is an Ethertype
PROTOCOL_IPV6 = 0x86DD
PROTOCOL_ETHERNET = 0x6558  # RFC 8926 §3.4: Transparent Ethernet Bridging
ETHERNET_HEADER_LENGTH = 14  # IEEE 802.3 §3.1.1: destination, source, Ethertype

_FLAG_OAM = 0x80  # RFC 8926 §3.4: O, a control packet for the endpoints themselves
_FLAG_CRITICAL = 0x40  # RFC 8926 §3.4: C, some option has its critical bit set
_FIXED = struct.Struct("!BBHI")  # Ver|Opt Len, O|C|Rsvd, Protocol Type, VNI|Reserved
_OPTION = struct.Struct("!HBB")  # Option Class, Type, R|R|R|Length
_MAC = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}")


class GeneveError(InvalidInput):
    """A Geneve datagram or value that RFC 8926 does not allow."""


def _number(value: object, name: str, top: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GeneveError(f"{name} is a number")
    if not 0 <= value <= top:
        raise GeneveError(f"{name} {value}: 0 to {top}")
    return value


@dataclass(frozen=True, slots=True)
class GeneveOption:
    """One TLV option: its class, its type (critical when the high bit is set) and data,
    a whole number of 4-octet words (RFC 8926 §3.5)."""

    option_class: int
    type: int
    data: bytes = b""

    def __post_init__(self) -> None:
        _number(self.option_class, "option class", 0xFFFF)
        _number(self.type, "option type", 0xFF)
        if not isinstance(self.data, bytes):
            raise GeneveError("option data is bytes")
        if len(self.data) % 4 or len(self.data) > MAX_OPTION_DATA:
            raise GeneveError(
                f"option data of {len(self.data)} octets: a multiple of 4, at most 124"
            )

    @property
    def critical(self) -> bool:
        return bool(self.type & CRITICAL_TYPE)

    @property
    def wire_length(self) -> int:
        return OPTION_HEADER_LENGTH + len(self.data)

    def to_wire(self) -> bytes:
        return _OPTION.pack(self.option_class, self.type, len(self.data) // 4) + self.data


@dataclass(frozen=True, slots=True)
class GeneveHeader:
    """The fixed header and its options. C is not a field: it is set exactly when an
    option is critical, as RFC 8926 §3.4 requires of a sender."""

    vni: int
    protocol: int = PROTOCOL_IPV4
    options: tuple[GeneveOption, ...] = ()
    oam: bool = False

    def __post_init__(self) -> None:
        _number(self.vni, "VNI", MAX_VNI)
        _number(self.protocol, "protocol type", 0xFFFF)
        if not isinstance(self.options, tuple) or not all(
            isinstance(o, GeneveOption) for o in self.options
        ):
            raise GeneveError("options are a tuple of GeneveOption")
        if not isinstance(self.oam, bool):
            raise GeneveError("oam is a bool")
        if self.options_length > MAX_OPTIONS_LENGTH:
            raise GeneveError(f"options of {self.options_length} octets: at most 252")

    @property
    def critical(self) -> bool:
        return any(o.critical for o in self.options)

    @property
    def options_length(self) -> int:
        return sum(o.wire_length for o in self.options)

    @property
    def length(self) -> int:
        """Octets before the payload."""
        return HEADER_LENGTH + self.options_length

    def to_wire(self) -> bytes:
        flags = (_FLAG_OAM if self.oam else 0) | (_FLAG_CRITICAL if self.critical else 0)
        fixed = _FIXED.pack(
            (VERSION << 6) | (self.options_length // 4), flags, self.protocol, self.vni << 8
        )
        return fixed + b"".join(o.to_wire() for o in self.options)


def _mac(value: object, name: str) -> str:
    """A MAC address as six colon-separated hex octets, lower case."""
    if not isinstance(value, str) or not _MAC.fullmatch(value):
        raise GeneveError(f"{name} is a MAC address like 02:5a:00:00:00:01")
    return value.lower()


@dataclass(frozen=True, slots=True)
class EthernetFraming:
    """Ethernet inside the tunnel, for a peer that takes nothing else: Open vSwitch's
    userspace Geneve accepts only Protocol Type 0x6558 (Transparent Ethernet Bridging)
    and drops IP inside ("unknown geneve encapsulated protocol"). `local` is this end's
    MAC (the frames' source), `peer` the MAC of the host or router behind the peer's
    end (their destination): a point-to-point tunnel has no one else to address, and
    nothing on it answers ARP, so both are configured, not learned."""

    local: str
    peer: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "local", _mac(self.local, "the local MAC"))
        object.__setattr__(self, "peer", _mac(self.peer, "the peer's MAC"))

    def header(self, ethertype: int) -> bytes:
        """The 14 octets before a packet of `ethertype` (IPv4 0x0800, IPv6 0x86DD)."""
        _number(ethertype, "Ethertype", 0xFFFF)
        return (
            bytes.fromhex(self.peer.replace(":", ""))
            + bytes.fromhex(self.local.replace(":", ""))
            + ethertype.to_bytes(2, "big")
        )


def header_bytes(vni: int, protocol: int, options: tuple[GeneveOption, ...] = ()) -> bytes:
    """The header to prepend to every payload of one (VNI, options) pair: built once."""
    return GeneveHeader(vni, protocol, options).to_wire()


def encode(header: GeneveHeader, payload: bytes) -> bytes:
    return header.to_wire() + payload


class Parsed(NamedTuple):
    """A datagram read in place: the numbers of its fixed header, where its options lie
    (`options_end` is also where the payload starts) and its flags. A named tuple: one
    is made per packet, and it is the cheapest typed value to make."""

    vni: int
    protocol: int
    oam: bool
    critical: bool
    options_end: int


def parse(datagram: bytes | memoryview) -> Parsed:
    """The fixed header of `datagram`, checked against its length; options unread."""
    if len(datagram) < HEADER_LENGTH:
        raise GeneveError(f"{len(datagram)} octets: shorter than a Geneve header")
    first, flags, protocol, vni_word = _FIXED.unpack_from(datagram, 0)
    if first >> 6 != VERSION:
        raise GeneveError(f"Geneve version {first >> 6} is not known")
    options_end = HEADER_LENGTH + (first & 0x3F) * 4
    if options_end > len(datagram):
        raise GeneveError(f"options of {options_end - HEADER_LENGTH} octets overrun the datagram")
    # The six Rsvd bits and the Reserved octet MUST be ignored on receipt (RFC 8926 §3.4).
    return Parsed(
        vni_word >> 8, protocol, bool(flags & _FLAG_OAM), bool(flags & _FLAG_CRITICAL), options_end
    )


def options_in(
    datagram: bytes | memoryview, options_end: int
) -> Iterator[tuple[int, int, memoryview]]:
    """(class, type, data) of each option, in order, data as a view into `datagram`.
    Raises GeneveError when an option overruns the options area."""
    view = memoryview(datagram)
    at = HEADER_LENGTH
    while at < options_end:
        if at + OPTION_HEADER_LENGTH > options_end:
            raise GeneveError("an option header overruns the options area")
        option_class, option_type, length = _OPTION.unpack_from(view, at)
        # The three R bits MUST be ignored on receipt (RFC 8926 §3.5).
        start = at + OPTION_HEADER_LENGTH
        at = start + (length & 0x1F) * 4
        if at > options_end:
            raise GeneveError(
                f"option {option_class:#06x}/{option_type:#04x} overruns the options area"
            )
        yield option_class, option_type, view[start:at]


def decode(datagram: bytes | memoryview) -> tuple[GeneveHeader, bytes]:
    """The header and the payload of a whole datagram (the checked, slower path)."""
    parsed = parse(datagram)
    options = tuple(
        GeneveOption(c, t, bytes(d)) for c, t, d in options_in(datagram, parsed.options_end)
    )
    if not parsed.critical and any(o.critical for o in options):
        # A transit device that reads only C would miss the option (RFC 8926 §3.4).
        raise GeneveError("a critical option without the C flag")
    header = GeneveHeader(parsed.vni, parsed.protocol, options, parsed.oam)
    return header, bytes(datagram[parsed.options_end :])
