"""The Access-Request hot path on raw octets: same rules as `auth` and `reply`, fewer
objects.

`auth.verify_request` and `reply.encode_reply` rebuild immutable packets several
times per call; at tens of thousands of requests per second that is most of the
cost. These functions compute the same HMAC-MD5 Message-Authenticator (RFC 3579
§3.2) and MD5 Response Authenticator (RFC 2865 §3) directly over the datagram and
over the reply's bytes, and read only the attributes the decision needs. The
structural checks are those of `Packet.decode`; the e2e tests run radclient against
this path and a Hypothesis test compares it with the codec.

`_fast.c` does the same in C where the install could build it; the functions here are
its reference (tests/radius/test_radius_fast.py holds the two equal) and run where it
is missing or `ZTSIM_PURE_PYTHON` is set (read once, at import: a build switch, not a
setting).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from enum import IntEnum
from typing import Any, NamedTuple

from ztsim.radius.attrtypes import VENDOR_3GPP, AttributeType, ThreeGppType
from ztsim.radius.datatypes import DataType, Value, decode_value
from ztsim.radius.dictionary import BY_NUMBER
from ztsim.radius.errors import RadiusDecodeError, RadiusEncodeError
from ztsim.radius.packet import HEADER_LENGTH, MAX_PACKET_LENGTH
from ztsim.radius.vsa import TLV_VENDORS

_MA = int(AttributeType.MESSAGE_AUTHENTICATOR)
_MA_LENGTH = 18  # RFC 3579 §3.2: Type, Length and a 16-octet HMAC-MD5
_ZERO16 = bytes(16)
_HEADER = struct.Struct("!BBH16s")
_SHORT_HEADER = struct.Struct("!BBH")
# Plain ints: compared once per attribute, an enum member's lookup is noticeable there.
_USER_NAME = int(AttributeType.USER_NAME)
_CALLED_STATION_ID = int(AttributeType.CALLED_STATION_ID)
_PROXY_STATE = int(AttributeType.PROXY_STATE)
_VENDOR_SPECIFIC = int(AttributeType.VENDOR_SPECIFIC)
_3GPP_IMSI = int(ThreeGppType.IMSI)
_3GPP_IMEISV = int(ThreeGppType.IMEISV)
# RFC 2865 §5.26: the Vendor-Id, 4 octets in network order, starts a VSA's value.
_VENDOR_3GPP = VENDOR_3GPP.to_bytes(4, "big")
# Read but undecodable stays None; a later copy of the attribute is then ignored too.
_UNSET: Any = object()


class RawAccess(NamedTuple):
    """The attributes an access decision reads, as text, plus the Proxy-States to echo."""

    user_name: str | None
    imsi: str | None
    imeisv: str | None
    apn: str | None
    proxy_states: tuple[bytes, ...]


def _text(value: bytes) -> str | None:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return None


class RawRequest(NamedTuple):
    """An Access-Request read in one pass over its octets."""

    code: int
    identifier: int
    authenticator: bytes
    length: int
    # Offset of the single Message-Authenticator, -1 if absent, -2 if repeated or malformed.
    ma_offset: int
    access: RawAccess


def scan_request_py(datagram: bytes) -> RawRequest:
    """The header and the attributes the decision reads, with the structural checks of
    `Packet.decode` (RFC 2865 §3, §5); `RadiusDecodeError` on any fault. The Python
    reference of `scan_request`."""
    size = len(datagram)
    if size < HEADER_LENGTH:
        raise RadiusDecodeError(f"datagram is {size} octets, shorter than the RADIUS header")
    code, identifier, length, authenticator = _HEADER.unpack_from(datagram)
    if not HEADER_LENGTH <= length <= MAX_PACKET_LENGTH or length > size:
        raise RadiusDecodeError(f"Length field {length} does not fit the {size}-octet datagram")
    user = apn = imsi = imeisv = _UNSET
    proxy: list[bytes] = []
    ma_offset = -1
    offset = HEADER_LENGTH
    while offset < length:
        if length - offset < 2:
            raise RadiusDecodeError(f"attribute at offset {offset} is cut off after its type")
        kind = datagram[offset]
        end = offset + datagram[offset + 1]
        if end < offset + 2 or end > length:
            raise RadiusDecodeError(f"attribute {kind} at offset {offset} has a bad length")
        if kind == _VENDOR_SPECIFIC:
            if datagram[offset + 2 : offset + 6] == _VENDOR_3GPP and end >= offset + 6:
                # TS 29.061 §16.4.7: 3GPP sub-attributes are Type (1), Length (1), Value.
                sub = offset + 6
                while sub + 2 <= end:
                    sub_type = datagram[sub]
                    sub_end = sub + datagram[sub + 1]
                    if sub_end < sub + 2 or sub_end > end:
                        break
                    if sub_type == _3GPP_IMSI:
                        if imsi is _UNSET:
                            imsi = _text(datagram[sub + 2 : sub_end])
                    elif sub_type == _3GPP_IMEISV and imeisv is _UNSET:
                        imeisv = _text(datagram[sub + 2 : sub_end])
                    sub = sub_end
        elif kind == _USER_NAME:
            if user is _UNSET:
                user = _text(datagram[offset + 2 : end])
        elif kind == _CALLED_STATION_ID:
            if apn is _UNSET:
                apn = _text(datagram[offset + 2 : end])
        elif kind == _MA:
            ma_offset = offset if ma_offset == -1 and end - offset == _MA_LENGTH else -2
        elif kind == _PROXY_STATE:
            proxy.append(datagram[offset:end])
        offset = end
    access = RawAccess(
        None if user is _UNSET else user,
        None if imsi is _UNSET else imsi,
        None if imeisv is _UNSET else imeisv,
        None if apn is _UNSET else apn,
        tuple(proxy),
    )
    return RawRequest(code, identifier, authenticator, length, ma_offset, access)


# RFC 2104 §2: HMAC over a 64-octet block; a longer key is hashed first.
_BLOCK = 64
_IPAD = bytes(0x36 for _ in range(_BLOCK))
_OPAD = bytes(0x5C for _ in range(_BLOCK))


@functools.lru_cache(maxsize=1024)
def _hmac_md5_pads(secret: bytes) -> tuple[Any, Any]:
    """MD5 states after the inner and the outer padded key (RFC 2104 §2), computed once
    per shared secret: each HMAC then copies them instead of hashing the key again."""
    key = hashlib.md5(secret, usedforsecurity=False).digest() if len(secret) > _BLOCK else secret
    key = key.ljust(_BLOCK, b"\0")
    inner = hashlib.md5(
        bytes(k ^ p for k, p in zip(key, _IPAD, strict=True)), usedforsecurity=False
    )
    outer = hashlib.md5(
        bytes(k ^ p for k, p in zip(key, _OPAD, strict=True)), usedforsecurity=False
    )
    return inner, outer


def hmac_md5(secret: bytes, data: bytes) -> bytes:
    """HMAC-MD5 (RFC 2104), the same octets as `hmac.digest(secret, data, "md5")`."""
    inner_start, outer_start = _hmac_md5_pads(secret)
    inner = inner_start.copy()
    inner.update(data)
    outer = outer_start.copy()
    outer.update(inner.digest())
    digest: bytes = outer.digest()
    return digest


def message_authenticator_ok(
    datagram: bytes, request: RawRequest, secret: bytes, *, required: bool
) -> bool:
    """RFC 3579 §3.2 for an Access-Request: the HMAC-MD5 over the packet with the
    attribute's value zeroed, the Request Authenticator in place. More than one
    Message-Authenticator, or a wrong length, fails."""
    found = request.ma_offset
    if found == -2:
        return False
    if found == -1:
        return not required
    if _fast is not None:
        ok: bool = _fast.ma_ok(datagram, found, request.length, secret)
        return ok
    return ma_ok_py(datagram, found, request.length, secret)


def ma_ok_py(datagram: bytes, offset: int, length: int, secret: bytes) -> bool:
    """The Message-Authenticator at `offset` of a `length`-octet packet checks out; the
    Python reference of `_fast.ma_ok`, with its bounds (`ValueError` outside them)."""
    if (
        length > len(datagram)
        or length < HEADER_LENGTH + _MA_LENGTH
        or offset < HEADER_LENGTH
        or offset > length - _MA_LENGTH
    ):
        raise ValueError("Message-Authenticator offset out of the packet")
    inner_start, outer_start = _hmac_md5_pads(secret)
    inner = inner_start.copy()
    inner.update(datagram[: offset + 2] + _ZERO16 + datagram[offset + _MA_LENGTH : length])
    outer = outer_start.copy()
    outer.update(inner.digest())
    return hmac.compare_digest(outer.digest(), datagram[offset + 2 : offset + _MA_LENGTH])


# Type and Length of a Message-Authenticator, and the attribute with its value zeroed.
_MA_HEAD = bytes((_MA, _MA_LENGTH))
_MA_ZEROED = _MA_HEAD + _ZERO16
# RFC 2865 §3: a packet is at most 4096 octets, header and Message-Authenticator included.
_MAX_TAIL = MAX_PACKET_LENGTH - HEADER_LENGTH - _MA_LENGTH


def encode_access_reply(
    code: int,
    request: RawRequest,
    attributes: bytes,
    secret: bytes,
) -> bytes:
    """Access-Accept/Reject with Message-Authenticator first (BlastRADIUS guidance, 2024),
    then `attributes`, then the request's Proxy-States (RFC 2865 §5.33).
    `RadiusEncodeError` when that exceeds 4096 octets: refused, never truncated."""
    proxy_states = request.access.proxy_states
    tail = attributes + b"".join(proxy_states) if proxy_states else attributes
    if len(tail) > _MAX_TAIL:
        raise RadiusEncodeError(
            f"the reply would be {HEADER_LENGTH + _MA_LENGTH + len(tail)} octets,"
            f" more than {MAX_PACKET_LENGTH}"
        )
    if _fast is not None:
        signed: bytes = _fast.sign(code, request.identifier, request.authenticator, tail, secret)
        return signed
    head = _SHORT_HEADER.pack(code, request.identifier, HEADER_LENGTH + _MA_LENGTH + len(tail))
    head_auth = head + request.authenticator
    body = _MA_HEAD + hmac_md5(secret, head_auth + _MA_ZEROED + tail) + tail
    response = hashlib.md5(head_auth + body + secret, usedforsecurity=False).digest()
    return head + response + body


def _speedups() -> Any:
    """The C module (`_fast.c`) if it was built and ZTSIM_PURE_PYTHON is not set."""
    if os.environ.get("ZTSIM_PURE_PYTHON"):
        return None
    try:
        from ztsim.radius import _fast as module
    except ImportError:
        return None
    module.init(RadiusDecodeError, RawRequest, RawAccess)
    return module


_fast = _speedups()
# The same function either way; the C one reads a request about six times faster
# (1.5 µs against 9 µs here), and checks and signs in about half the time.
scan_request: Callable[[bytes], RawRequest] = scan_request_py if _fast is None else _fast.scan


# -- Accounting-Request: the values, without the packet's objects ---------------------------

_ACCOUNTING_REQUEST = 4  # RFC 2866 §4.1
_STANDARD = 0


class RawAccounting(NamedTuple):
    """An Accounting-Request read in one pass over its octets: the typed value of the
    first of each known attribute, by name (what `dictionary.decode_attributes(...).get`
    gives), and its Proxy-States as sent, to echo in the response."""

    identifier: int
    authenticator: bytes
    length: int
    values: dict[str, Value]
    proxy_states: bytes


_Definitions = dict[tuple[int, int], tuple[str, DataType, type[IntEnum] | None]]
# (vendor, type) -> what decoding needs, as plain tuples: one lookup per attribute.
_KNOWN: _Definitions = {key: (d.name, d.data_type, d.enum) for key, d in BY_NUMBER.items()}


def scan_accounting_py(datagram: bytes) -> RawAccounting | None:
    """The values of an Accounting-Request, decoded as `Packet.decode` and
    `decode_attributes` decode them (the same checks; `RadiusDecodeError` where they
    raise), for the general path's work without its objects. None for anything else:
    another code, or a Message-Authenticator (whose HMAC the general path checks). The
    Python reference of `scan_accounting`."""
    size = len(datagram)
    if size < HEADER_LENGTH:
        raise RadiusDecodeError(f"datagram is {size} octets, shorter than the RADIUS header")
    code, identifier, length, authenticator = _HEADER.unpack_from(datagram)
    if not HEADER_LENGTH <= length <= MAX_PACKET_LENGTH or length > size:
        raise RadiusDecodeError(f"Length field {length} does not fit the {size}-octet datagram")
    if code != _ACCOUNTING_REQUEST:
        return None
    known = _KNOWN
    values: dict[str, Value] = {}
    proxy = b""
    offset = HEADER_LENGTH
    while offset < length:
        if length - offset < 2:
            raise RadiusDecodeError(f"attribute at offset {offset} is cut off after its type")
        kind = datagram[offset]
        end = offset + datagram[offset + 1]
        if end < offset + 2 or end > length:
            raise RadiusDecodeError(f"attribute {kind} at offset {offset} has a bad length")
        if kind == _VENDOR_SPECIFIC:
            _scan_vendor(datagram, offset + 2, end, known, values)
        elif kind == _MA:
            return None
        else:
            if kind == _PROXY_STATE:
                proxy += datagram[offset:end]
            found = known.get((_STANDARD, kind))
            if found is not None:
                name, data_type, enum = found
                value = decode_value(name, data_type, datagram[offset + 2 : end], enum)
                if name not in values:
                    values[name] = value
        offset = end
    return RawAccounting(identifier, authenticator, length, values, proxy)


def _scan_vendor(
    datagram: bytes,
    start: int,
    end: int,
    known: _Definitions,
    values: dict[str, Value],
) -> None:
    # RFC 2865 §5.26: Vendor-Id (4 octets), then for the TLV vendors Type, Length, Value.
    if end - start < 5:
        raise RadiusDecodeError(f"Vendor-Specific value is {end - start} octets, shorter than 5")
    vendor = int.from_bytes(datagram[start : start + 4], "big")
    if vendor not in TLV_VENDORS:
        return
    sub = start + 4
    while sub < end:
        if end - sub < 2:
            raise RadiusDecodeError(f"vendor {vendor} sub-attribute is cut off after its type")
        sub_type = datagram[sub]
        sub_end = sub + datagram[sub + 1]
        if sub_end < sub + 2 or sub_end > end:
            raise RadiusDecodeError(f"vendor {vendor} sub-attribute {sub_type} has a bad length")
        found = known.get((vendor, sub_type))
        if found is not None:
            name, data_type, enum = found
            value = decode_value(name, data_type, datagram[sub + 2 : sub_end], enum)
            if name not in values:
                values[name] = value
        sub = sub_end


# How `_fast` decodes each data type itself (its AS_* numbers); the others it hands to
# `decode_value`.
_HOW = {
    DataType.TEXT: 1,
    DataType.DIGITS: 2,
    DataType.OCTETS: 3,
    DataType.INTEGER: 4,
    DataType.BYTE: 5,
}
_Entry = tuple[str, int, dict[Any, Any] | None, DataType, type[IntEnum] | None] | None


def _table(vendor: int) -> tuple[_Entry, ...]:
    """`_KNOWN`'s definitions of `vendor` (0: the standard attributes) by type number, in
    the form `_fast.init_accounting` takes."""
    entries: list[_Entry] = [None] * 256
    for (owner, number), (name, data_type, enum) in _KNOWN.items():
        if owner == vendor and 0 <= number < 256:
            members = None if enum is None else dict(enum._value2member_map_)
            entries[number] = (name, _HOW.get(data_type, 0), members, data_type, enum)
    return tuple(entries)


def _accounting_speedup() -> Callable[[bytes], RawAccounting | None]:
    if _fast is None:
        return scan_accounting_py
    _fast.init_accounting(
        RawAccounting, _table(_STANDARD), {v: _table(v) for v in TLV_VENDORS}, decode_value
    )
    scan: Callable[[bytes], RawAccounting | None] = _fast.scan_accounting
    return scan


# The same function either way; the C one reads the values about five times faster.
scan_accounting = _accounting_speedup()
