"""The RADIUS packet value and its strict wire decoding (RFC 2865 §3, §5).

`Packet.decode` turns one UDP datagram into an immutable `Packet`; `Packet.encode`
turns a `Packet` back into the exact octets (minus any padding the datagram
carried), so authenticators can be checked on the value alone.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ztsim.radius.codes import Code
from ztsim.radius.errors import RadiusDecodeError, RadiusEncodeError

# RFC 2865 §3: Code, Identifier, Length (2) and Authenticator (16).
HEADER_LENGTH = 20
# RFC 2865 §3: "The minimum length is 20 and maximum length is 4096."
MIN_PACKET_LENGTH = 20
MAX_PACKET_LENGTH = 4096
# RFC 2865 §3: the Authenticator field is sixteen octets.
AUTHENTICATOR_LENGTH = 16
# RFC 2865 §5: the Length octet counts Type and Length, so a value holds 253 octets at most.
MAX_ATTRIBUTE_VALUE_LENGTH = 253
_HEADER = struct.Struct("!BBH16s")


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute: its type (1..255, 0 is kept as read) and raw value octets."""

    type: int
    value: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.type, int) or not 0 <= self.type <= 255:
            raise RadiusEncodeError(f"attribute type must be 0..255, got {self.type!r}")
        if not isinstance(self.value, bytes):
            raise RadiusEncodeError(f"attribute {self.type} value must be bytes")
        if len(self.value) > MAX_ATTRIBUTE_VALUE_LENGTH:
            raise RadiusEncodeError(
                f"attribute {self.type} value is {len(self.value)} octets, "
                f"more than {MAX_ATTRIBUTE_VALUE_LENGTH}"
            )

    def encode(self) -> bytes:
        return bytes((self.type, len(self.value) + 2)) + self.value

    def __repr__(self) -> str:
        # Values can be hidden passwords or authenticators: show their size only.
        return f"Attribute(type={self.type}, value=<{len(self.value)} octets>)"


@dataclass(frozen=True, slots=True)
class Packet:
    """An immutable RADIUS packet.

    `attributes` keeps wire order, which matters: Proxy-State order must be kept
    (RFC 2865 §5.33) and Message-Authenticator position is part of the hash.
    """

    code: Code
    identifier: int
    authenticator: bytes
    attributes: tuple[Attribute, ...] = field(default=())

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "code", Code(self.code))
        except ValueError:
            raise RadiusEncodeError(f"unsupported RADIUS code {self.code!r}") from None
        if not isinstance(self.identifier, int) or not 0 <= self.identifier <= 255:
            raise RadiusEncodeError(f"identifier must be 0..255, got {self.identifier!r}")
        if not isinstance(self.authenticator, bytes) or (
            len(self.authenticator) != AUTHENTICATOR_LENGTH
        ):
            raise RadiusEncodeError("authenticator must be 16 bytes")
        attributes = tuple(self.attributes)
        if not all(isinstance(a, Attribute) for a in attributes):
            raise RadiusEncodeError("attributes must be Attribute values")
        object.__setattr__(self, "attributes", attributes)
        length = HEADER_LENGTH + sum(len(a.value) + 2 for a in attributes)
        if length > MAX_PACKET_LENGTH:
            raise RadiusEncodeError(
                f"packet would be {length} octets, more than {MAX_PACKET_LENGTH}"
            )

    @property
    def length(self) -> int:
        """The Length field this packet encodes to."""
        return HEADER_LENGTH + sum(len(a.value) + 2 for a in self.attributes)

    def encode(self) -> bytes:
        """The packet's octets, with the authenticator field as it stands."""
        body = b"".join(a.encode() for a in self.attributes)
        return _HEADER.pack(self.code, self.identifier, self.length, self.authenticator) + body

    @classmethod
    def decode(cls, datagram: bytes) -> Packet:
        """Parse one datagram; raise `RadiusDecodeError` on any structural fault."""
        if len(datagram) < MIN_PACKET_LENGTH:
            raise RadiusDecodeError(
                f"datagram is {len(datagram)} octets, shorter than the "
                f"{MIN_PACKET_LENGTH}-octet RADIUS header"
            )
        code, identifier, length, authenticator = _HEADER.unpack_from(datagram)
        if not MIN_PACKET_LENGTH <= length <= MAX_PACKET_LENGTH:
            raise RadiusDecodeError(
                f"Length field {length} is outside {MIN_PACKET_LENGTH}..{MAX_PACKET_LENGTH}"
            )
        # RFC 2865 §3: octets past Length are padding and ignored; fewer is an error.
        if length > len(datagram):
            raise RadiusDecodeError(
                f"Length field {length} exceeds the {len(datagram)}-octet datagram"
            )
        try:
            packet_code = Code(code)
        except ValueError:
            raise RadiusDecodeError(f"unknown RADIUS code {code}") from None
        return cls(packet_code, identifier, authenticator, _decode_attributes(datagram, length))

    def get(self, attribute_type: int) -> bytes | None:
        """The value of the first attribute of this type, or None."""
        for attribute in self.attributes:
            if attribute.type == attribute_type:
                return attribute.value
        return None

    def get_all(self, attribute_type: int) -> tuple[bytes, ...]:
        """The values of every attribute of this type, in wire order."""
        return tuple(a.value for a in self.attributes if a.type == attribute_type)

    def replace(
        self,
        *,
        authenticator: bytes | None = None,
        attributes: Iterable[Attribute] | None = None,
    ) -> Packet:
        """A copy with a new authenticator and/or attribute tuple."""
        return Packet(
            self.code,
            self.identifier,
            self.authenticator if authenticator is None else authenticator,
            self.attributes if attributes is None else tuple(attributes),
        )

    def __iter__(self) -> Iterator[Attribute]:
        return iter(self.attributes)

    def __repr__(self) -> str:
        return (
            f"Packet(code={self.code.name}, identifier={self.identifier}, "
            f"attributes={list(self.attributes)!r})"
        )


def _decode_attributes(datagram: bytes, length: int) -> tuple[Attribute, ...]:
    attributes: list[Attribute] = []
    offset = HEADER_LENGTH
    while offset < length:
        if length - offset < 2:
            raise RadiusDecodeError(f"attribute at offset {offset} is cut off after its type")
        attribute_type, attribute_length = datagram[offset], datagram[offset + 1]
        # RFC 2865 §5: Length covers Type, Length and Value, so it is at least 2.
        if attribute_length < 2:
            raise RadiusDecodeError(
                f"attribute {attribute_type} at offset {offset} has length {attribute_length} < 2"
            )
        end = offset + attribute_length
        if end > length:
            raise RadiusDecodeError(
                f"attribute {attribute_type} at offset {offset} runs past the packet Length"
            )
        attributes.append(Attribute(attribute_type, datagram[offset + 2 : end]))
        offset = end
    return tuple(attributes)
