"""The Access-Request hot path on raw octets: same rules as `auth` and `reply`, fewer
objects.

`auth.verify_request` and `reply.encode_reply` rebuild immutable packets several
times per call; at tens of thousands of requests per second that is most of the
cost. These functions compute the same HMAC-MD5 Message-Authenticator (RFC 3579
§3.2) and MD5 Response Authenticator (RFC 2865 §3) directly over the datagram and
over the reply's bytes, and read only the attributes the decision needs. The
packet is still parsed by `Packet.decode` first, so its structure is checked the
same way; the e2e tests run radclient against this path.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from ztsim.radius.attrtypes import VENDOR_3GPP, AttributeType, ThreeGppType
from ztsim.radius.packet import HEADER_LENGTH, Attribute, Packet

_MA = AttributeType.MESSAGE_AUTHENTICATOR
_MA_LENGTH = 18  # RFC 3579 §3.2: Type, Length and a 16-octet HMAC-MD5
_ZERO16 = bytes(16)
_HEADER = struct.Struct("!BBH16s")
_SHORT_HEADER = struct.Struct("!BBH")
_VENDOR = struct.Struct("!I")


@dataclass(frozen=True, slots=True)
class RawAccess:
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


def read_access(attributes: Sequence[Attribute]) -> RawAccess:
    user = imsi = imeisv = apn = None
    proxy: list[bytes] = []
    for a in attributes:
        t = a.type
        if t == AttributeType.USER_NAME:
            user = _text(a.value) if user is None else user
        elif t == AttributeType.CALLED_STATION_ID:
            apn = _text(a.value) if apn is None else apn
        elif t == AttributeType.PROXY_STATE:
            proxy.append(a.encode())
        elif t == AttributeType.VENDOR_SPECIFIC and len(a.value) >= 4:
            if _VENDOR.unpack_from(a.value)[0] != VENDOR_3GPP:
                continue
            # TS 29.061 §16.4.7: 3GPP sub-attributes are Type (1), Length (1), Value.
            data, offset = a.value, 4
            while offset + 2 <= len(data):
                sub_type, sub_length = data[offset], data[offset + 1]
                if sub_length < 2 or offset + sub_length > len(data):
                    break
                value = data[offset + 2 : offset + sub_length]
                if sub_type == ThreeGppType.IMSI and imsi is None:
                    imsi = _text(value)
                elif sub_type == ThreeGppType.IMEISV and imeisv is None:
                    imeisv = _text(value)
                offset += sub_length
    return RawAccess(user, imsi, imeisv, apn, tuple(proxy))


def message_authenticator_ok(
    datagram: bytes, packet: Packet, secret: bytes, *, required: bool
) -> bool:
    """RFC 3579 §3.2 for an Access-Request: the HMAC-MD5 over the packet with the
    attribute's value zeroed, the Request Authenticator in place. More than one
    Message-Authenticator, or a wrong length, fails."""
    offset, found = HEADER_LENGTH, -1
    for a in packet.attributes:
        if a.type == _MA:
            if found >= 0 or len(a.value) != 16:
                return False
            found = offset
        offset += len(a.value) + 2
    if found < 0:
        return not required
    end = packet.length
    zeroed = datagram[: found + 2] + _ZERO16 + datagram[found + _MA_LENGTH : end]
    expected = hmac.new(secret, zeroed, hashlib.md5).digest()
    return hmac.compare_digest(expected, datagram[found + 2 : found + _MA_LENGTH])


def encode_access_reply(
    code: int,
    request: Packet,
    attributes: bytes,
    proxy_states: tuple[bytes, ...],
    secret: bytes,
) -> bytes:
    """Access-Accept/Reject with Message-Authenticator first (BlastRADIUS guidance, 2024),
    then `attributes`, then the request's Proxy-States (RFC 2865 §5.33)."""
    tail = attributes + b"".join(proxy_states)
    length = HEADER_LENGTH + _MA_LENGTH + len(tail)
    head = _SHORT_HEADER.pack(code, request.identifier, length)
    placeholder = bytes((_MA, _MA_LENGTH)) + _ZERO16
    ma = hmac.new(secret, head + request.authenticator + placeholder + tail, hashlib.md5).digest()
    body = bytes((_MA, _MA_LENGTH)) + ma + tail
    response = hashlib.md5(
        head + request.authenticator + body + secret, usedforsecurity=False
    ).digest()
    return head + response + body
