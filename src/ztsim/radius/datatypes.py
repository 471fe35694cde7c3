"""Typed decoding and encoding of attribute values by data type (RFC 8044 §3)."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from enum import Enum, IntEnum
from ipaddress import IPv4Address, IPv6Address, IPv6Network

from ztsim.radius.errors import RadiusDecodeError, RadiusEncodeError
from ztsim.radius.uli import UserLocationInfo
from ztsim.radius.values import MsTimeZone


class DataType(Enum):
    TEXT = "text"  # RFC 8044 §3.4: UTF-8
    DIGITS = "digits"  # TS 29.061 "UTF-8 encoded digits" (IMSI, IMEISV, MCC-MNC)
    OCTETS = "octets"  # RFC 8044 §3.5
    INTEGER = "integer"  # RFC 8044 §3.1: 32-bit unsigned
    BYTE = "byte"  # one unsigned octet (3GPP RAT-Type, DSCP, ...)
    IPV4 = "ipv4addr"  # RFC 8044 §3.8
    IPV6 = "ipv6addr"  # RFC 8044 §3.9
    IPV6_PREFIX = "ipv6prefix"  # RFC 8044 §3.10 / RFC 3162 §2.3
    DATE = "time"  # RFC 8044 §3.3: seconds since 1970-01-01 UTC
    IPV6_LIST = "ipv6addr-list"  # 3GPP-IPv6-DNS-Servers: concatenated addresses
    USER_LOCATION = "uli"  # TS 29.061 item 22
    TIMEZONE = "timezone"  # TS 29.061 item 23


Value = (
    str
    | int
    | bytes
    | IPv4Address
    | IPv6Address
    | IPv6Network
    | datetime
    | tuple[IPv6Address, ...]
    | UserLocationInfo
    | MsTimeZone
)


def _fixed(name: str, raw: bytes, size: int) -> bytes:
    if len(raw) != size:
        raise RadiusDecodeError(f"{name} is {len(raw)} octets, not {size}")
    return raw


def _enum_or_int(enum: type[IntEnum] | None, number: int) -> int:
    if enum is None:
        return number
    try:
        return enum(number)
    except ValueError:
        return number


def decode_value(name: str, data_type: DataType, raw: bytes, enum: type[IntEnum] | None) -> Value:
    """Decode `raw` as `data_type`; raise `RadiusDecodeError` naming `name`."""
    if data_type is DataType.OCTETS:
        return raw
    if data_type in (DataType.TEXT, DataType.DIGITS):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RadiusDecodeError(f"{name} is not valid UTF-8") from None
        if data_type is DataType.DIGITS and not (text.isascii() and text.isdigit()):
            raise RadiusDecodeError(f"{name} must be decimal digits")
        return text
    if data_type is DataType.INTEGER:
        return _enum_or_int(enum, int.from_bytes(_fixed(name, raw, 4), "big"))
    if data_type is DataType.BYTE:
        return _enum_or_int(enum, _fixed(name, raw, 1)[0])
    if data_type is DataType.IPV4:
        return IPv4Address(_fixed(name, raw, 4))
    if data_type is DataType.IPV6:
        return IPv6Address(_fixed(name, raw, 16))
    if data_type is DataType.DATE:
        seconds = int.from_bytes(_fixed(name, raw, 4), "big")
        return datetime.fromtimestamp(seconds, tz=UTC)
    if data_type is DataType.IPV6_PREFIX:
        return _decode_ipv6_prefix(name, raw)
    if data_type is DataType.IPV6_LIST:
        if not raw or len(raw) % 16:
            raise RadiusDecodeError(f"{name} is {len(raw)} octets, not a multiple of 16")
        return tuple(IPv6Address(raw[i : i + 16]) for i in range(0, len(raw), 16))
    if data_type is DataType.USER_LOCATION:
        return UserLocationInfo.decode(raw)
    return MsTimeZone.decode(raw)


def _decode_ipv6_prefix(name: str, raw: bytes) -> IPv6Network:
    # RFC 3162 §2.3: Reserved, Prefix-Length, then 0..16 prefix octets.
    if not 2 <= len(raw) <= 18:
        raise RadiusDecodeError(f"{name} is {len(raw)} octets, not 2..18")
    length, prefix = raw[1], raw[2:]
    if length > 128 or len(prefix) * 8 < length:
        raise RadiusDecodeError(f"{name} prefix length {length} does not fit its octets")
    try:
        return IPv6Network((IPv6Address(prefix.ljust(16, b"\0")), length))
    except ValueError:
        # RFC 8044 §3.10: bits past the prefix length must be zero.
        raise RadiusDecodeError(f"{name} has bits set past its prefix length") from None


def encode_value(name: str, data_type: DataType, value: object) -> bytes:
    """Encode a typed value; raise `RadiusEncodeError` if it does not fit."""
    try:
        return _encode(data_type, value)
    except (TypeError, ValueError, OverflowError, AttributeError) as exc:
        if isinstance(exc, RadiusEncodeError):
            raise
        raise RadiusEncodeError(f"{name} cannot hold that {type(value).__name__}") from None


def _encode(data_type: DataType, value: object) -> bytes:
    if data_type is DataType.OCTETS and isinstance(value, bytes):
        return value
    if data_type is DataType.TEXT and isinstance(value, str):
        return value.encode("utf-8")
    if data_type is DataType.DIGITS and isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise ValueError("not digits")
        return value.encode("ascii")
    if data_type is DataType.INTEGER and isinstance(value, int):
        return value.to_bytes(4, "big")
    if data_type is DataType.BYTE and isinstance(value, int):
        return value.to_bytes(1, "big")
    if data_type is DataType.IPV4:
        return IPv4Address(value).packed
    if data_type is DataType.IPV6:
        return IPv6Address(value).packed
    if data_type is DataType.DATE and isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return int(value.timestamp()).to_bytes(4, "big")
    if data_type is DataType.IPV6_PREFIX:
        network = ipaddress.IPv6Network(value)
        octets = -(-network.prefixlen // 8)
        return bytes((0, network.prefixlen)) + network.network_address.packed[:octets]
    if data_type is DataType.IPV6_LIST and isinstance(value, tuple | list):
        return b"".join(IPv6Address(a).packed for a in value)
    if data_type is DataType.USER_LOCATION and isinstance(value, UserLocationInfo):
        return value.encode()
    if data_type is DataType.TIMEZONE and isinstance(value, MsTimeZone):
        return value.encode()
    raise TypeError("wrong value type")
