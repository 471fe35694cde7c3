"""EDNS(0) (RFC 6891) and its Extended DNS Errors option (RFC 8914), as values.

The OPT pseudo-RR is not kept among the additional records of a `Message`: it
becomes `Message.edns`, and its extended-RCODE bits are folded into
`Message.rcode`, as RFC 6891 §6.1.3 defines the 12-bit RCODE.
"""

import struct
from dataclasses import dataclass

from ztsim.dns.wire.constants import EDNS_DO, EdnsOptionCode, RRType
from ztsim.dns.wire.errors import DnsDecodeError, DnsEncodeError

_OPTION_HEADER = struct.Struct("!HH")
_OPT_FIXED = struct.Struct("!BHHIH")  # root name, TYPE, CLASS, TTL, RDLENGTH (RFC 6891 §6.1.2)
MIN_PAYLOAD = 512  # RFC 6891 §6.2.5: smaller advertised sizes are treated as 512


@dataclass(frozen=True, slots=True)
class EdnsOption:
    """One {OPTION-CODE, OPTION-DATA} pair of an OPT record (RFC 6891 §6.1.2)."""

    code: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.code, int) or not 0 <= self.code <= 0xFFFF:
            raise DnsEncodeError(f"EDNS option code {self.code!r} is not 16-bit")
        if not isinstance(self.data, bytes) or len(self.data) > 0xFFFF:
            raise DnsEncodeError("EDNS option data must be bytes of at most 65535 octets")


@dataclass(frozen=True, slots=True)
class ExtendedError:
    """An Extended DNS Error (RFC 8914 §2): INFO-CODE and optional UTF-8 EXTRA-TEXT."""

    info_code: int
    extra_text: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.info_code, int) or not 0 <= self.info_code <= 0xFFFF:
            raise DnsEncodeError(f"EDE INFO-CODE {self.info_code!r} is not 16-bit")
        if not isinstance(self.extra_text, str):
            raise DnsEncodeError("EDE EXTRA-TEXT must be a str")
        if len(self.extra_text.encode("utf-8")) > 0xFFFF - 2:
            raise DnsEncodeError("EDE EXTRA-TEXT too long for one option")

    def to_option(self) -> EdnsOption:
        # RFC 8914 §2: EXTRA-TEXT is not NUL-terminated, and may be empty.
        body = self.info_code.to_bytes(2, "big") + self.extra_text.encode("utf-8")
        return EdnsOption(EdnsOptionCode.EDE, body)

    @classmethod
    def from_option(cls, option: EdnsOption) -> "ExtendedError":
        if option.code != EdnsOptionCode.EDE:
            raise DnsDecodeError(f"option {option.code} is not an Extended DNS Error")
        if len(option.data) < 2:
            raise DnsDecodeError("EDE option shorter than its INFO-CODE")
        try:
            text = option.data[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise DnsDecodeError("EDE EXTRA-TEXT is not UTF-8") from None
        return cls(int.from_bytes(option.data[:2], "big"), text)


@dataclass(frozen=True, slots=True)
class Edns:
    """The OPT record's contents other than the extended RCODE bits."""

    payload_size: int = 1232
    version: int = 0
    dnssec_ok: bool = False
    z: int = 0  # the 15 flag bits after DO, reserved (RFC 6891 §6.1.4), kept for round trips
    options: tuple[EdnsOption, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.payload_size, int) or not 0 <= self.payload_size <= 0xFFFF:
            raise DnsEncodeError(f"EDNS payload size {self.payload_size!r} is not 16-bit")
        if not isinstance(self.version, int) or not 0 <= self.version <= 0xFF:
            raise DnsEncodeError(f"EDNS version {self.version!r} is not 8-bit")
        if not isinstance(self.z, int) or not 0 <= self.z <= 0x7FFF:
            raise DnsEncodeError(f"EDNS Z bits {self.z!r} are not 15-bit")
        if not isinstance(self.options, tuple) or not all(
            isinstance(option, EdnsOption) for option in self.options
        ):
            raise DnsEncodeError("EDNS options must be a tuple of EdnsOption")

    @property
    def effective_payload(self) -> int:
        return max(self.payload_size, MIN_PAYLOAD)

    def extended_errors(self) -> tuple[ExtendedError, ...]:
        return tuple(
            ExtendedError.from_option(option)
            for option in self.options
            if option.code == EdnsOptionCode.EDE
        )

    def to_wire(self, extended_rcode: int = 0) -> bytes:
        """The whole OPT RR: the upper 8 bits of a 12-bit RCODE go in `extended_rcode`."""
        rdata = options_to_wire(self.options)
        if len(rdata) > 0xFFFF:
            raise DnsEncodeError("EDNS options longer than 65535 octets")
        flags = (EDNS_DO if self.dnssec_ok else 0) | self.z
        ttl = (extended_rcode << 24) | (self.version << 16) | flags
        fixed = _OPT_FIXED.pack(0, RRType.OPT, self.payload_size, ttl, len(rdata))
        return fixed + rdata


def options_to_wire(options: tuple[EdnsOption, ...]) -> bytes:
    return b"".join(_OPTION_HEADER.pack(o.code, len(o.data)) + o.data for o in options)


def parse_options(rdata: bytes) -> tuple[EdnsOption, ...]:
    """Split OPT RDATA into options; a truncated option is a `DnsDecodeError`."""
    options = []
    pos = 0
    while pos < len(rdata):
        if pos + 4 > len(rdata):
            raise DnsDecodeError("EDNS option header cut short")
        code, length = _OPTION_HEADER.unpack_from(rdata, pos)
        pos += 4
        if pos + length > len(rdata):
            raise DnsDecodeError("EDNS option data runs past RDLENGTH")
        options.append(EdnsOption(code, rdata[pos : pos + length]))
        pos += length
    return tuple(options)


def edns_from_rr(rclass: int, ttl: int, rdata: bytes) -> tuple[Edns, int]:
    """Build `Edns` from an OPT RR's CLASS/TTL/RDATA; also return the extended RCODE bits."""
    edns = Edns(
        payload_size=rclass,
        version=(ttl >> 16) & 0xFF,
        dnssec_ok=bool(ttl & EDNS_DO),
        z=ttl & 0x7FFF,
        options=parse_options(rdata),
    )
    return edns, ttl >> 24
