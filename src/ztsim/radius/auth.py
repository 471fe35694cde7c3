"""Authenticators: Request/Response Authenticator, Message-Authenticator, User-Password.

All comparisons of received authenticators use `hmac.compare_digest`. MD5 is the
protocol's own choice (RFC 2865 §3); it is not used here for anything else.
"""

from __future__ import annotations

import hashlib
import hmac

from ztsim.radius.attrtypes import AttributeType
from ztsim.radius.codes import HASHED_REQUEST_CODES, Code
from ztsim.radius.errors import RadiusAuthError, RadiusDecodeError, RadiusEncodeError
from ztsim.radius.packet import AUTHENTICATOR_LENGTH, Attribute, Packet
from ztsim.radius.secret import SharedSecret

# RFC 3579 §3.2: Message-Authenticator is a 16-octet HMAC-MD5.
MESSAGE_AUTHENTICATOR_LENGTH = 16
# RFC 2865 §5.2: the password is hidden in 16-octet chunks, 128 octets at most.
PASSWORD_CHUNK = 16
MAX_PASSWORD_LENGTH = 128
_ZERO_AUTHENTICATOR = bytes(AUTHENTICATOR_LENGTH)
_ZERO_MESSAGE_AUTHENTICATOR = bytes(MESSAGE_AUTHENTICATOR_LENGTH)


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


def _hmac_md5(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.md5).digest()


def _zero_message_authenticator(packet: Packet) -> Packet:
    return packet.replace(
        attributes=[
            Attribute(a.type, _ZERO_MESSAGE_AUTHENTICATOR)
            if a.type == AttributeType.MESSAGE_AUTHENTICATOR
            else a
            for a in packet.attributes
        ]
    )


def _single_message_authenticator(packet: Packet) -> bytes | None:
    values = packet.get_all(AttributeType.MESSAGE_AUTHENTICATOR)
    if len(values) > 1:
        raise RadiusAuthError("packet carries more than one Message-Authenticator")
    if values and len(values[0]) != MESSAGE_AUTHENTICATOR_LENGTH:
        raise RadiusAuthError(f"Message-Authenticator is {len(values[0])} octets, not 16")
    return values[0] if values else None


def message_authenticator(packet: Packet, secret: SharedSecret, authenticator: bytes) -> bytes:
    """HMAC-MD5 over `packet` with its Message-Authenticator zeroed (RFC 3579 §3.2).

    `authenticator` is what stands in the header during the computation: the
    packet's own Request Authenticator for Access-Request, sixteen zeros for the
    hashed requests (RFC 5176 §3.3 for CoA/Disconnect; FreeRADIUS does the same for
    Accounting-Request, checked against radclient), and the request's
    authenticator for replies.
    """
    zeroed = _zero_message_authenticator(packet).replace(authenticator=authenticator)
    return _hmac_md5(secret.reveal(), zeroed.encode())


def hashed_request_authenticator(packet: Packet, secret: SharedSecret) -> bytes:
    """MD5(Code+Identifier+Length+16 zero octets+Attributes+Secret) (RFC 2866 §3)."""
    return _md5(packet.replace(authenticator=_ZERO_AUTHENTICATOR).encode() + secret.reveal())


def response_authenticator(
    reply: Packet, request_authenticator: bytes, secret: SharedSecret
) -> bytes:
    """MD5(Code+ID+Length+RequestAuth+Attributes+Secret) (RFC 2865 §3)."""
    return _md5(reply.replace(authenticator=request_authenticator).encode() + secret.reveal())


def verify_request(
    packet: Packet, secret: SharedSecret, *, require_message_authenticator: bool = False
) -> None:
    """Check a received request; raise `RadiusAuthError` if it does not verify.

    Accounting-, Disconnect- and CoA-Requests must carry the hashed Request
    Authenticator (RFC 2866 §3, RFC 5176 §2.3). A Message-Authenticator, when
    present, must verify (RFC 3579 §3.2). `require_message_authenticator` makes
    its absence an error, as BlastRADIUS guidance asks servers to do for
    Access-Request once their clients send it.
    """
    if packet.code not in (Code.ACCESS_REQUEST, Code.STATUS_SERVER, *HASHED_REQUEST_CODES):
        raise RadiusAuthError(f"{packet.code.name} is not a request")
    received_ma = _single_message_authenticator(packet)
    if packet.code in HASHED_REQUEST_CODES:
        expected = hashed_request_authenticator(packet, secret)
        if not hmac.compare_digest(expected, packet.authenticator):
            raise RadiusAuthError(f"{packet.code.name} Request Authenticator does not verify")
        ma_authenticator = _ZERO_AUTHENTICATOR
    else:
        ma_authenticator = packet.authenticator
    if received_ma is None:
        # RFC 5997 §3: Status-Server always carries a Message-Authenticator.
        if require_message_authenticator or packet.code == Code.STATUS_SERVER:
            raise RadiusAuthError(f"{packet.code.name} lacks a Message-Authenticator")
        return
    expected_ma = message_authenticator(packet, secret, ma_authenticator)
    if not hmac.compare_digest(expected_ma, received_ma):
        raise RadiusAuthError(f"{packet.code.name} Message-Authenticator does not verify")


def verify_reply(
    reply: Packet,
    request: Packet,
    secret: SharedSecret,
    *,
    require_message_authenticator: bool = False,
) -> None:
    """Check a reply against the request it answers (client side, for simulators)."""
    if reply.identifier != request.identifier:
        raise RadiusAuthError("reply identifier does not match the request")
    received_ma = _single_message_authenticator(reply)
    expected = response_authenticator(reply, request.authenticator, secret)
    if not hmac.compare_digest(expected, reply.authenticator):
        raise RadiusAuthError(f"{reply.code.name} Response Authenticator does not verify")
    if received_ma is None:
        if require_message_authenticator:
            raise RadiusAuthError(f"{reply.code.name} lacks a Message-Authenticator")
        return
    expected_ma = message_authenticator(reply, secret, request.authenticator)
    if not hmac.compare_digest(expected_ma, received_ma):
        raise RadiusAuthError(f"{reply.code.name} Message-Authenticator does not verify")


def _with_message_authenticator_first(packet: Packet) -> Packet:
    others = [a for a in packet.attributes if a.type != AttributeType.MESSAGE_AUTHENTICATOR]
    placeholder = Attribute(AttributeType.MESSAGE_AUTHENTICATOR, _ZERO_MESSAGE_AUTHENTICATOR)
    return packet.replace(attributes=[placeholder, *others])


def _fill_message_authenticator(packet: Packet, value: bytes) -> Packet:
    attributes = list(packet.attributes)
    attributes[0] = Attribute(AttributeType.MESSAGE_AUTHENTICATOR, value)
    return packet.replace(attributes=attributes)


def sign_reply(
    reply: Packet,
    request: Packet,
    secret: SharedSecret,
    *,
    add_message_authenticator: bool = True,
) -> Packet:
    """The reply with Message-Authenticator (first) and Response Authenticator filled in.

    Any Message-Authenticator already in `reply` is dropped and, when
    `add_message_authenticator` is set, a fresh one is put first: BlastRADIUS
    guidance (2024) has servers send it first in every Access-Accept/Reject/
    Challenge, so a forged prefix cannot be slipped ahead of it.
    """
    if reply.identifier != request.identifier:
        raise RadiusEncodeError("reply identifier must match the request's")
    if add_message_authenticator:
        reply = _with_message_authenticator_first(reply)
        ma = message_authenticator(reply, secret, request.authenticator)
        reply = _fill_message_authenticator(reply, ma)
    else:
        reply = reply.replace(
            attributes=[
                a for a in reply.attributes if a.type != AttributeType.MESSAGE_AUTHENTICATOR
            ]
        )
    return reply.replace(authenticator=response_authenticator(reply, request.authenticator, secret))


def sign_request(
    packet: Packet, secret: SharedSecret, *, add_message_authenticator: bool = False
) -> Packet:
    """A request ready to send: hashed authenticator and/or Message-Authenticator set.

    For Access-Request and Status-Server the caller's authenticator is kept: it
    must be a fresh random nonce (RFC 2865 §3), which the caller draws, since this
    module takes no randomness of its own.
    """
    if add_message_authenticator or packet.code == Code.STATUS_SERVER:
        packet = _with_message_authenticator_first(packet)
        hashed = packet.code in HASHED_REQUEST_CODES
        ma_authenticator = _ZERO_AUTHENTICATOR if hashed else packet.authenticator
        packet = _fill_message_authenticator(
            packet, message_authenticator(packet, secret, ma_authenticator)
        )
    if packet.code in HASHED_REQUEST_CODES:
        packet = packet.replace(authenticator=hashed_request_authenticator(packet, secret))
    return packet


def _password_pads(secret: SharedSecret, authenticator: bytes, chunks: list[bytes]) -> bytes:
    # RFC 2865 §5.2: b1 = MD5(S + RA), bi = MD5(S + c(i-1)).
    pads = []
    previous = authenticator
    for chunk in chunks:
        pad = _md5(secret.reveal() + previous)
        pads.append(pad)
        previous = chunk
    return b"".join(pads)


def hide_password(password: bytes, secret: SharedSecret, authenticator: bytes) -> bytes:
    """The User-Password value for `password` under `authenticator` (RFC 2865 §5.2)."""
    if len(password) > MAX_PASSWORD_LENGTH:
        raise RadiusEncodeError(f"password longer than {MAX_PASSWORD_LENGTH} octets")
    padded_length = max(PASSWORD_CHUNK, -(-len(password) // PASSWORD_CHUNK) * PASSWORD_CHUNK)
    padded = password.ljust(padded_length, b"\0")
    hidden = b""
    previous = authenticator
    for start in range(0, padded_length, PASSWORD_CHUNK):
        pad = _md5(secret.reveal() + previous)
        chunk = bytes(
            p ^ b for p, b in zip(padded[start : start + PASSWORD_CHUNK], pad, strict=True)
        )
        hidden += chunk
        previous = chunk
    return hidden


def unhide_password(hidden: bytes, secret: SharedSecret, authenticator: bytes) -> bytes:
    """The password from a User-Password value, trailing NUL padding removed."""
    if not hidden or len(hidden) % PASSWORD_CHUNK or len(hidden) > MAX_PASSWORD_LENGTH:
        raise RadiusDecodeError(
            f"User-Password is {len(hidden)} octets, not a multiple of 16 in 16..128"
        )
    chunks = [hidden[i : i + PASSWORD_CHUNK] for i in range(0, len(hidden), PASSWORD_CHUNK)]
    pads = _password_pads(secret, authenticator, chunks)
    return bytes(h ^ p for h, p in zip(hidden, pads, strict=True)).rstrip(b"\0")
