"""RADIUS packet codes and which reply answers which request."""

from enum import IntEnum


class Code(IntEnum):
    """Packet codes this codec accepts; any other code is a decode error."""

    ACCESS_REQUEST = 1  # RFC 2865 §4.1
    ACCESS_ACCEPT = 2  # RFC 2865 §4.2
    ACCESS_REJECT = 3  # RFC 2865 §4.3
    ACCOUNTING_REQUEST = 4  # RFC 2866 §4.1
    ACCOUNTING_RESPONSE = 5  # RFC 2866 §4.2
    ACCESS_CHALLENGE = 11  # RFC 2865 §4.4
    STATUS_SERVER = 12  # RFC 5997 §3
    DISCONNECT_REQUEST = 40  # RFC 5176 §2.1
    DISCONNECT_ACK = 41  # RFC 5176 §2.1
    DISCONNECT_NAK = 42  # RFC 5176 §2.1
    COA_REQUEST = 43  # RFC 5176 §2.2
    COA_ACK = 44  # RFC 5176 §2.2
    COA_NAK = 45  # RFC 5176 §2.2


# The replies each request code may receive (RFC 2865 §4, RFC 2866 §4, RFC 5176 §2).
REPLIES: dict[Code, frozenset[Code]] = {
    Code.ACCESS_REQUEST: frozenset({Code.ACCESS_ACCEPT, Code.ACCESS_REJECT, Code.ACCESS_CHALLENGE}),
    Code.ACCOUNTING_REQUEST: frozenset({Code.ACCOUNTING_RESPONSE}),
    # RFC 5997 §3: Status-Server is answered like the port it was sent to.
    Code.STATUS_SERVER: frozenset({Code.ACCESS_ACCEPT, Code.ACCOUNTING_RESPONSE}),
    Code.DISCONNECT_REQUEST: frozenset({Code.DISCONNECT_ACK, Code.DISCONNECT_NAK}),
    Code.COA_REQUEST: frozenset({Code.COA_ACK, Code.COA_NAK}),
}

REQUEST_CODES = frozenset(REPLIES)

# Requests whose Request Authenticator is an MD5 over the packet, not a nonce
# (RFC 2866 §3, RFC 5176 §2.3).
HASHED_REQUEST_CODES = frozenset(
    {Code.ACCOUNTING_REQUEST, Code.DISCONNECT_REQUEST, Code.COA_REQUEST}
)

# Replies in which BlastRADIUS guidance (2024; draft-ietf-radext-deprecating-radius)
# has servers always send Message-Authenticator, as the first attribute.
ACCESS_REPLY_CODES = frozenset({Code.ACCESS_ACCEPT, Code.ACCESS_REJECT, Code.ACCESS_CHALLENGE})
