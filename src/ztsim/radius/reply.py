"""Building replies from requests: Proxy-State echo, signing, reply codes."""

from __future__ import annotations

from collections.abc import Iterable

from ztsim.radius.attrtypes import AttributeType
from ztsim.radius.auth import sign_reply
from ztsim.radius.codes import ACCESS_REPLY_CODES, REPLIES, Code
from ztsim.radius.errors import RadiusEncodeError
from ztsim.radius.packet import AUTHENTICATOR_LENGTH, Attribute, Packet
from ztsim.radius.secret import SharedSecret


def make_reply(request: Packet, code: Code, attributes: Iterable[Attribute] = ()) -> Packet:
    """An unsigned reply to `request` with `attributes`, then its Proxy-States.

    RFC 2865 §5.33: Proxy-State attributes are copied unmodified and in order
    into the reply. Any Proxy-State in `attributes` is refused, since only the
    request's may be echoed.
    """
    allowed = REPLIES.get(request.code, frozenset())
    if code not in allowed:
        raise RadiusEncodeError(f"{Code(code).name} does not answer {request.code.name}")
    own = tuple(attributes)
    if any(a.type == AttributeType.PROXY_STATE for a in own):
        raise RadiusEncodeError("replies may only echo the request's Proxy-State")
    echoed = tuple(a for a in request.attributes if a.type == AttributeType.PROXY_STATE)
    # The authenticator is a placeholder until sign_reply computes it.
    return Packet(code, request.identifier, bytes(AUTHENTICATOR_LENGTH), own + echoed)


def encode_reply(
    reply: Packet,
    request: Packet,
    secret: SharedSecret,
    *,
    add_message_authenticator: bool | None = None,
) -> bytes:
    """Sign `reply` for `request` and return the datagram.

    By default Access-Accept/Reject/Challenge get a Message-Authenticator as their
    first attribute (BlastRADIUS guidance, 2024); other replies get one only if
    asked, since RFC 2866 accounting clients need not expect it.
    """
    if add_message_authenticator is None:
        add_message_authenticator = reply.code in ACCESS_REPLY_CODES
    return sign_reply(
        reply, request, secret, add_message_authenticator=add_message_authenticator
    ).encode()
