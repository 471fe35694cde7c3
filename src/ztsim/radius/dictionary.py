"""Attribute definitions and typed decoding/encoding of whole attribute lists.

Numbers and value formats follow RFC 2865/2866/2869/3162/3579/5176/6911 and
3GPP TS 29.061 §16.4.7, cross-checked against FreeRADIUS's dictionary files
(tests/radius compare them). Names are the TS 29.061 ones; FreeRADIUS spellings
that differ are accepted as aliases.

Differences from FreeRADIUS 3.2 dictionary.3gpp, noted here and in the tests:
- 3GPP-RAT-Type: FreeRADIUS lacks EUTRAN-NB-IoT (8), LTE-M (9) and NR (10).
- 3GPP-IMSI, -IMEISV, -*-MCC-MNC: FreeRADIUS says "string"; TS 29.061 says
  UTF-8 digits, which this module enforces.
- 3GPP-User-Location-Info and -MS-TimeZone: opaque octets in FreeRADIUS; decoded
  here.
- Names: FreeRADIUS "3GPP-Charging-ID", "3GPP-Charging-Gateway-Address",
  "3GPP-MS-Time-Zone" are TS 29.061's 3GPP-Charging-Id, 3GPP-CG-Address,
  3GPP-MS-TimeZone.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum

from ztsim.radius.attrtypes import (
    VENDOR_3GPP,
    VENDOR_MICROSOFT,
    AttributeType,
    MicrosoftType,
    ThreeGppType,
)
from ztsim.radius.datatypes import DataType, Value, decode_value, encode_value
from ztsim.radius.errors import RadiusEncodeError
from ztsim.radius.packet import Attribute, Packet
from ztsim.radius.values import (
    AcctStatusType,
    AcctTerminateCause,
    AllocateIpType,
    ErrorCause,
    FramedProtocol,
    NasPortType,
    PdpType,
    RatType,
    ServiceType,
)
from ztsim.radius.vsa import (
    TLV_VENDORS,
    decode_sub_attributes,
    encode_vendor_attribute,
    split_vendor_specific,
)

# Vendor 0 stands for "standard attribute space" (IANA reserves enterprise 0).
STANDARD = 0


@dataclass(frozen=True, slots=True)
class AttributeDef:
    name: str
    type: int
    data_type: DataType
    vendor: int = STANDARD
    enum: builtins.type[IntEnum] | None = None


_T = AttributeType
_G = ThreeGppType
_D = DataType

_STANDARD_DEFS = (
    AttributeDef("User-Name", _T.USER_NAME, _D.TEXT),
    # Kept as the hidden octets: unhide with auth.unhide_password and the secret.
    AttributeDef("User-Password", _T.USER_PASSWORD, _D.OCTETS),
    AttributeDef("CHAP-Password", _T.CHAP_PASSWORD, _D.OCTETS),
    AttributeDef("NAS-IP-Address", _T.NAS_IP_ADDRESS, _D.IPV4),
    AttributeDef("NAS-Port", _T.NAS_PORT, _D.INTEGER),
    AttributeDef("Service-Type", _T.SERVICE_TYPE, _D.INTEGER, enum=ServiceType),
    AttributeDef("Framed-Protocol", _T.FRAMED_PROTOCOL, _D.INTEGER, enum=FramedProtocol),
    AttributeDef("Framed-IP-Address", _T.FRAMED_IP_ADDRESS, _D.IPV4),
    AttributeDef("Framed-IP-Netmask", _T.FRAMED_IP_NETMASK, _D.IPV4),
    AttributeDef("Filter-Id", _T.FILTER_ID, _D.TEXT),
    AttributeDef("Framed-MTU", _T.FRAMED_MTU, _D.INTEGER),
    AttributeDef("Reply-Message", _T.REPLY_MESSAGE, _D.TEXT),
    AttributeDef("State", _T.STATE, _D.OCTETS),
    AttributeDef("Class", _T.CLASS, _D.OCTETS),
    AttributeDef("Session-Timeout", _T.SESSION_TIMEOUT, _D.INTEGER),
    AttributeDef("Idle-Timeout", _T.IDLE_TIMEOUT, _D.INTEGER),
    AttributeDef("Called-Station-Id", _T.CALLED_STATION_ID, _D.TEXT),
    AttributeDef("Calling-Station-Id", _T.CALLING_STATION_ID, _D.TEXT),
    AttributeDef("NAS-Identifier", _T.NAS_IDENTIFIER, _D.TEXT),
    AttributeDef("Proxy-State", _T.PROXY_STATE, _D.OCTETS),
    AttributeDef("Acct-Status-Type", _T.ACCT_STATUS_TYPE, _D.INTEGER, enum=AcctStatusType),
    AttributeDef("Acct-Delay-Time", _T.ACCT_DELAY_TIME, _D.INTEGER),
    AttributeDef("Acct-Input-Octets", _T.ACCT_INPUT_OCTETS, _D.INTEGER),
    AttributeDef("Acct-Output-Octets", _T.ACCT_OUTPUT_OCTETS, _D.INTEGER),
    AttributeDef("Acct-Session-Id", _T.ACCT_SESSION_ID, _D.TEXT),
    AttributeDef("Acct-Authentic", _T.ACCT_AUTHENTIC, _D.INTEGER),
    AttributeDef("Acct-Session-Time", _T.ACCT_SESSION_TIME, _D.INTEGER),
    AttributeDef("Acct-Input-Packets", _T.ACCT_INPUT_PACKETS, _D.INTEGER),
    AttributeDef("Acct-Output-Packets", _T.ACCT_OUTPUT_PACKETS, _D.INTEGER),
    AttributeDef(
        "Acct-Terminate-Cause", _T.ACCT_TERMINATE_CAUSE, _D.INTEGER, enum=AcctTerminateCause
    ),
    AttributeDef("Acct-Multi-Session-Id", _T.ACCT_MULTI_SESSION_ID, _D.TEXT),
    AttributeDef("Acct-Input-Gigawords", _T.ACCT_INPUT_GIGAWORDS, _D.INTEGER),
    AttributeDef("Acct-Output-Gigawords", _T.ACCT_OUTPUT_GIGAWORDS, _D.INTEGER),
    AttributeDef("Event-Timestamp", _T.EVENT_TIMESTAMP, _D.DATE),
    AttributeDef("NAS-Port-Type", _T.NAS_PORT_TYPE, _D.INTEGER, enum=NasPortType),
    AttributeDef("Message-Authenticator", _T.MESSAGE_AUTHENTICATOR, _D.OCTETS),
    AttributeDef("Acct-Interim-Interval", _T.ACCT_INTERIM_INTERVAL, _D.INTEGER),
    AttributeDef("NAS-Port-Id", _T.NAS_PORT_ID, _D.TEXT),
    AttributeDef("NAS-IPv6-Address", _T.NAS_IPV6_ADDRESS, _D.IPV6),
    AttributeDef("Framed-Interface-Id", _T.FRAMED_INTERFACE_ID, _D.OCTETS),
    AttributeDef("Framed-IPv6-Prefix", _T.FRAMED_IPV6_PREFIX, _D.IPV6_PREFIX),
    AttributeDef("Error-Cause", _T.ERROR_CAUSE, _D.INTEGER, enum=ErrorCause),
    AttributeDef("Framed-IPv6-Address", _T.FRAMED_IPV6_ADDRESS, _D.IPV6),
    AttributeDef("DNS-Server-IPv6-Address", _T.DNS_SERVER_IPV6_ADDRESS, _D.IPV6),
)


def _g(
    name: str, number: int, data_type: DataType, enum: type[IntEnum] | None = None
) -> AttributeDef:
    return AttributeDef(name, number, data_type, VENDOR_3GPP, enum)


# TS 29.061 Table 16.4.7.1 and §16.4.7.2 for formats.
_3GPP_DEFS = (
    _g("3GPP-IMSI", _G.IMSI, _D.DIGITS),
    _g("3GPP-Charging-Id", _G.CHARGING_ID, _D.INTEGER),
    _g("3GPP-PDP-Type", _G.PDP_TYPE, _D.INTEGER, PdpType),
    _g("3GPP-CG-Address", _G.CG_ADDRESS, _D.IPV4),
    # "<release>-<hex QoS>" as UTF-8 text.
    _g("3GPP-GPRS-Negotiated-QoS-Profile", _G.GPRS_NEGOTIATED_QOS_PROFILE, _D.TEXT),
    _g("3GPP-SGSN-Address", _G.SGSN_ADDRESS, _D.IPV4),
    _g("3GPP-GGSN-Address", _G.GGSN_ADDRESS, _D.IPV4),
    _g("3GPP-IMSI-MCC-MNC", _G.IMSI_MCC_MNC, _D.DIGITS),
    _g("3GPP-GGSN-MCC-MNC", _G.GGSN_MCC_MNC, _D.DIGITS),
    # One UTF-8 hexadecimal character.
    _g("3GPP-NSAPI", _G.NSAPI, _D.TEXT),
    _g("3GPP-Session-Stop-Indicator", _G.SESSION_STOP_INDICATOR, _D.BYTE),
    # One UTF-8 decimal character ("0", "1", "2").
    _g("3GPP-Selection-Mode", _G.SELECTION_MODE, _D.TEXT),
    # Four UTF-8 hexadecimal characters.
    _g("3GPP-Charging-Characteristics", _G.CHARGING_CHARACTERISTICS, _D.TEXT),
    _g("3GPP-CG-IPv6-Address", _G.CG_IPV6_ADDRESS, _D.IPV6),
    _g("3GPP-SGSN-IPv6-Address", _G.SGSN_IPV6_ADDRESS, _D.IPV6),
    _g("3GPP-GGSN-IPv6-Address", _G.GGSN_IPV6_ADDRESS, _D.IPV6),
    _g("3GPP-IPv6-DNS-Servers", _G.IPV6_DNS_SERVERS, _D.IPV6_LIST),
    _g("3GPP-SGSN-MCC-MNC", _G.SGSN_MCC_MNC, _D.DIGITS),
    _g("3GPP-Teardown-Indicator", _G.TEARDOWN_INDICATOR, _D.BYTE),
    # UTF-8 digits: 16 for an IMEISV, 15 for an IMEI.
    _g("3GPP-IMEISV", _G.IMEISV, _D.DIGITS),
    _g("3GPP-RAT-Type", _G.RAT_TYPE, _D.BYTE, RatType),
    _g("3GPP-User-Location-Info", _G.USER_LOCATION_INFO, _D.USER_LOCATION),
    _g("3GPP-MS-TimeZone", _G.MS_TIMEZONE, _D.TIMEZONE),
    _g("3GPP-CAMEL-Charging-Info", _G.CAMEL_CHARGING_INFO, _D.OCTETS),
    _g("3GPP-Packet-Filter", _G.PACKET_FILTER, _D.OCTETS),
    _g("3GPP-Negotiated-DSCP", _G.NEGOTIATED_DSCP, _D.BYTE),
    _g("3GPP-Allocate-IP-Type", _G.ALLOCATE_IP_TYPE, _D.BYTE, AllocateIpType),
)

_MICROSOFT_DEFS = (
    AttributeDef(
        "MS-Primary-DNS-Server", MicrosoftType.PRIMARY_DNS_SERVER, _D.IPV4, VENDOR_MICROSOFT
    ),
    AttributeDef(
        "MS-Secondary-DNS-Server", MicrosoftType.SECONDARY_DNS_SERVER, _D.IPV4, VENDOR_MICROSOFT
    ),
)

DEFINITIONS: tuple[AttributeDef, ...] = _STANDARD_DEFS + _3GPP_DEFS + _MICROSOFT_DEFS
BY_NUMBER: dict[tuple[int, int], AttributeDef] = {(d.vendor, d.type): d for d in DEFINITIONS}
BY_NAME: dict[str, AttributeDef] = {d.name: d for d in DEFINITIONS}
# FreeRADIUS spellings of the same attributes.
for _alias, _name in {
    "3GPP-Charging-ID": "3GPP-Charging-Id",
    "3GPP-Charging-Gateway-Address": "3GPP-CG-Address",
    "3GPP-Charging-Gateway-IPv6-Address": "3GPP-CG-IPv6-Address",
    "3GPP-GPRS-Negotiated-QoS-profile": "3GPP-GPRS-Negotiated-QoS-Profile",
    "3GPP-Location-Info": "3GPP-User-Location-Info",
    "3GPP-MS-Time-Zone": "3GPP-MS-TimeZone",
    "3GPP-Camel-Charging-Info": "3GPP-CAMEL-Charging-Info",
}.items():
    BY_NAME[_alias] = BY_NAME[_name]


@dataclass(frozen=True, slots=True)
class DecodedAttribute:
    """A typed attribute. `vendor` is 0 for standard ones; unknown ones hold bytes."""

    name: str
    type: int
    value: Value
    vendor: int = STANDARD

    def __repr__(self) -> str:
        shown = f"<{len(self.value)} octets>" if isinstance(self.value, bytes) else repr(self.value)
        return f"DecodedAttribute({self.name}={shown})"


class DecodedAttributes:
    """The typed attributes of one packet, in wire order, looked up by name."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[DecodedAttribute]) -> None:
        self._items = tuple(items)

    def get(self, name: str) -> Value | None:
        canonical = _canonical(name)
        return next((a.value for a in self._items if a.name == canonical), None)

    def get_all(self, name: str) -> tuple[Value, ...]:
        canonical = _canonical(name)
        return tuple(a.value for a in self._items if a.name == canonical)

    def __iter__(self) -> Iterator[DecodedAttribute]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"DecodedAttributes({list(self._items)!r})"


def _canonical(name: str) -> str:
    definition = BY_NAME.get(name)
    return definition.name if definition else name


def _decode_one(vendor: int, number: int, raw: bytes) -> DecodedAttribute:
    definition = BY_NUMBER.get((vendor, number))
    if definition is None:
        label = f"Attr-{number}" if vendor == STANDARD else f"Vendor-{vendor}-Attr-{number}"
        return DecodedAttribute(label, number, raw, vendor)
    value = decode_value(definition.name, definition.data_type, raw, definition.enum)
    return DecodedAttribute(definition.name, number, value, vendor)


def decode_attributes(source: Packet | Iterable[Attribute]) -> DecodedAttributes:
    """Typed view of a packet's attributes; VSAs of 3GPP/Microsoft are flattened.

    Unknown attributes and vendors come back as raw bytes. A known attribute whose
    value breaks its format raises `RadiusDecodeError`.
    """
    decoded: list[DecodedAttribute] = []
    for attribute in source:
        if attribute.type != AttributeType.VENDOR_SPECIFIC:
            decoded.append(_decode_one(STANDARD, attribute.type, attribute.value))
            continue
        vendor, data = split_vendor_specific(attribute.value)
        if vendor not in TLV_VENDORS:
            decoded.append(DecodedAttribute("Vendor-Specific", attribute.type, data, vendor))
            continue
        for sub in decode_sub_attributes(vendor, data):
            decoded.append(_decode_one(vendor, sub.type, sub.value))
    return DecodedAttributes(decoded)


def make_attribute(name: str, value: object) -> Attribute:
    """Encode a typed value as the named attribute (wrapped in a VSA if vendor)."""
    definition = BY_NAME.get(name)
    if definition is None:
        raise RadiusEncodeError(f"unknown attribute name {name!r}")
    if (
        isinstance(value, IntEnum)
        and definition.enum is not None
        and not isinstance(value, definition.enum)
    ):
        raise RadiusEncodeError(f"{definition.name} takes {definition.enum.__name__} values")
    raw = encode_value(definition.name, definition.data_type, value)
    if definition.vendor == STANDARD:
        return Attribute(definition.type, raw)
    return encode_vendor_attribute(definition.vendor, definition.type, raw)
