"""RADIUS wire layer (sans-I/O): datagrams in, immutable values out.

ztsim is the AAA server of a PGW/GGSN/SMF (3GPP TS 29.061 §16). This package
decodes and encodes RFC 2865/2866/5176 packets, checks and makes authenticators,
and gives typed views of standard and 3GPP attributes; it opens no sockets. The AAA
role is layered below it: `aaa` (the sans-I/O decision engine and core), `store` (the
database side) and `serve` (sockets, threads, the role).
"""

from ztsim.radius.attrtypes import (
    VENDOR_3GPP,
    VENDOR_MICROSOFT,
    AttributeType,
    MicrosoftType,
    ThreeGppType,
)
from ztsim.radius.auth import (
    hide_password,
    message_authenticator,
    sign_reply,
    sign_request,
    unhide_password,
    verify_reply,
    verify_request,
)
from ztsim.radius.builders import (
    error_cause,
    framed_ip_address,
    framed_ipv6_prefix,
    ipv4_dns_servers,
    ipv6_dns_servers,
    reply_messages,
    session_timeout,
)
from ztsim.radius.codes import Code
from ztsim.radius.datatypes import DataType, Value
from ztsim.radius.dictionary import (
    AttributeDef,
    DecodedAttribute,
    DecodedAttributes,
    decode_attributes,
    make_attribute,
)
from ztsim.radius.errors import RadiusAuthError, RadiusDecodeError, RadiusEncodeError
from ztsim.radius.packet import Attribute, Packet
from ztsim.radius.reply import encode_reply, make_reply
from ztsim.radius.secret import SharedSecret
from ztsim.radius.uli import (
    CellGlobalId,
    EutranCellGlobalId,
    LocationType,
    MacroEnodebId,
    NrCellGlobalId,
    Plmn,
    RoutingAreaId,
    ServiceAreaId,
    TrackingAreaId,
    UserLocationInfo,
)
from ztsim.radius.values import (
    AcctStatusType,
    AcctTerminateCause,
    AllocateIpType,
    ErrorCause,
    FramedProtocol,
    MsTimeZone,
    NasPortType,
    PdpType,
    RatType,
    ServiceType,
)

__all__ = [
    "VENDOR_3GPP",
    "VENDOR_MICROSOFT",
    "AcctStatusType",
    "AcctTerminateCause",
    "AllocateIpType",
    "Attribute",
    "AttributeDef",
    "AttributeType",
    "CellGlobalId",
    "Code",
    "DataType",
    "DecodedAttribute",
    "DecodedAttributes",
    "ErrorCause",
    "EutranCellGlobalId",
    "FramedProtocol",
    "LocationType",
    "MacroEnodebId",
    "MicrosoftType",
    "MsTimeZone",
    "NasPortType",
    "NrCellGlobalId",
    "Packet",
    "PdpType",
    "Plmn",
    "RadiusAuthError",
    "RadiusDecodeError",
    "RadiusEncodeError",
    "RatType",
    "RoutingAreaId",
    "ServiceAreaId",
    "ServiceType",
    "SharedSecret",
    "ThreeGppType",
    "TrackingAreaId",
    "UserLocationInfo",
    "Value",
    "decode_attributes",
    "encode_reply",
    "error_cause",
    "framed_ip_address",
    "framed_ipv6_prefix",
    "hide_password",
    "ipv4_dns_servers",
    "ipv6_dns_servers",
    "make_attribute",
    "make_reply",
    "message_authenticator",
    "reply_messages",
    "session_timeout",
    "sign_reply",
    "sign_request",
    "unhide_password",
    "verify_reply",
    "verify_request",
]
