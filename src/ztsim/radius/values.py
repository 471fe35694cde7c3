"""Enumerated attribute values and the 3GPP-MS-TimeZone value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import IntEnum

from ztsim.radius.errors import RadiusDecodeError, RadiusEncodeError


class ServiceType(IntEnum):
    """Service-Type (RFC 2865 §5.6)."""

    LOGIN = 1
    FRAMED = 2
    CALLBACK_LOGIN = 3
    CALLBACK_FRAMED = 4
    OUTBOUND = 5
    ADMINISTRATIVE = 6
    NAS_PROMPT = 7
    AUTHENTICATE_ONLY = 8
    CALLBACK_NAS_PROMPT = 9
    CALL_CHECK = 10
    CALLBACK_ADMINISTRATIVE = 11


class FramedProtocol(IntEnum):
    """Framed-Protocol (RFC 2865 §5.7; 7 from TS 29.061 §16.4.1 via IANA)."""

    PPP = 1
    SLIP = 2
    ARAP = 3
    GANDALF = 4
    XYLOGICS = 5
    X75 = 6
    GPRS_PDP_CONTEXT = 7


class NasPortType(IntEnum):
    """NAS-Port-Type (RFC 2865 §5.41, RFC 3580 §3.4, IANA 22-25)."""

    ASYNC = 0
    SYNC = 1
    ISDN = 2
    ISDN_V120 = 3
    ISDN_V110 = 4
    VIRTUAL = 5
    PIAFS = 6
    HDLC_CLEAR_CHANNEL = 7
    X25 = 8
    X75 = 9
    G3_FAX = 10
    SDSL = 11
    ADSL_CAP = 12
    ADSL_DMT = 13
    IDSL = 14
    ETHERNET = 15
    XDSL = 16
    CABLE = 17
    WIRELESS_OTHER = 18
    WIRELESS_802_11 = 19
    TOKEN_RING = 20
    FDDI = 21
    WIRELESS_CDMA2000 = 22
    WIRELESS_UMTS = 23
    WIRELESS_1X_EV = 24
    IAPP = 25


class AcctStatusType(IntEnum):
    """Acct-Status-Type (RFC 2866 §5.1)."""

    START = 1
    STOP = 2
    INTERIM_UPDATE = 3
    ACCOUNTING_ON = 7
    ACCOUNTING_OFF = 8


class AcctTerminateCause(IntEnum):
    """Acct-Terminate-Cause (RFC 2866 §5.10)."""

    USER_REQUEST = 1
    LOST_CARRIER = 2
    LOST_SERVICE = 3
    IDLE_TIMEOUT = 4
    SESSION_TIMEOUT = 5
    ADMIN_RESET = 6
    ADMIN_REBOOT = 7
    PORT_ERROR = 8
    NAS_ERROR = 9
    NAS_REQUEST = 10
    NAS_REBOOT = 11
    PORT_UNNEEDED = 12
    PORT_PREEMPTED = 13
    PORT_SUSPENDED = 14
    SERVICE_UNAVAILABLE = 15
    CALLBACK = 16
    USER_ERROR = 17
    HOST_REQUEST = 18


class ErrorCause(IntEnum):
    """Error-Cause (RFC 5176 §3.5)."""

    RESIDUAL_SESSION_CONTEXT_REMOVED = 201
    INVALID_EAP_PACKET = 202
    UNSUPPORTED_ATTRIBUTE = 401
    MISSING_ATTRIBUTE = 402
    NAS_IDENTIFICATION_MISMATCH = 403
    INVALID_REQUEST = 404
    UNSUPPORTED_SERVICE = 405
    UNSUPPORTED_EXTENSION = 406
    INVALID_ATTRIBUTE_VALUE = 407
    ADMINISTRATIVELY_PROHIBITED = 501
    REQUEST_NOT_ROUTABLE = 502
    SESSION_CONTEXT_NOT_FOUND = 503
    SESSION_CONTEXT_NOT_REMOVABLE = 504
    OTHER_PROXY_PROCESSING_ERROR = 505
    RESOURCES_UNAVAILABLE = 506
    REQUEST_INITIATED = 507
    MULTIPLE_SESSION_SELECTION_UNSUPPORTED = 508


class PdpType(IntEnum):
    """3GPP-PDP-Type (TS 29.061 §16.4.7.2, item 3)."""

    IPV4 = 0
    PPP = 1
    IPV6 = 2
    IPV4V6 = 3
    NON_IP = 4


class RatType(IntEnum):
    """3GPP-RAT-Type (TS 29.061 §16.4.7.2, item 21; values as TS 29.274 §8.17).

    FreeRADIUS 3.2's dictionary.3gpp stops at Virtual (7) and lacks 8-10.
    """

    UTRAN = 1
    GERAN = 2
    WLAN = 3
    GAN = 4
    HSPA_EVOLUTION = 5
    EUTRAN = 6
    VIRTUAL = 7
    EUTRAN_NB_IOT = 8
    LTE_M = 9
    NR = 10
    IEEE_802_16E = 101
    EHRPD_3GPP2 = 102
    HRPD_3GPP2 = 103
    ONE_X_RTT_3GPP2 = 104


class AllocateIpType(IntEnum):
    """3GPP-Allocate-IP-Type (TS 29.061 §16.4.7.2, item 27)."""

    DO_NOT_ALLOCATE = 0
    ALLOCATE_IPV4 = 1
    ALLOCATE_IPV6_PREFIX = 2
    ALLOCATE_IPV4_AND_IPV6 = 3


# TS 24.008 §10.5.3.8: the offset is in quarter hours; ±14 h bounds real zones.
_MAX_QUARTER_HOURS = 79
_SIGN_BIT = 0x08


@dataclass(frozen=True, slots=True)
class MsTimeZone:
    """3GPP-MS-TimeZone (TS 29.061 item 23, coded as TS 29.274 §8.44 UE Time Zone).

    Octet 1 is the TS 24.008 §10.5.3.8 Time Zone: two swapped BCD digits of
    quarter hours east of UTC, sign in bit 4 of the low nibble. Octet 2 bits 1-2
    are the daylight saving adjustment in hours (0..2).
    """

    quarter_hours: int
    daylight_saving_hours: int = 0

    def __post_init__(self) -> None:
        if not -_MAX_QUARTER_HOURS <= self.quarter_hours <= _MAX_QUARTER_HOURS:
            raise RadiusEncodeError("time zone offset is out of range")
        if self.daylight_saving_hours not in (0, 1, 2):
            raise RadiusEncodeError("daylight saving adjustment must be 0, 1 or 2 hours")

    @property
    def utc_offset(self) -> timedelta:
        """Offset of local standard time from UTC (daylight saving not included)."""
        return timedelta(minutes=15 * self.quarter_hours)

    @classmethod
    def decode(cls, value: bytes) -> MsTimeZone:
        if len(value) != 2:
            raise RadiusDecodeError(f"3GPP-MS-TimeZone is {len(value)} octets, not 2")
        tens, units = value[0] & 0x07, value[0] >> 4
        if units > 9:
            raise RadiusDecodeError("3GPP-MS-TimeZone holds a non-BCD digit")
        magnitude = tens * 10 + units
        if magnitude > _MAX_QUARTER_HOURS or (value[1] & 0x03) == 3:
            raise RadiusDecodeError("3GPP-MS-TimeZone is out of range")
        sign = -1 if value[0] & _SIGN_BIT else 1
        return cls(sign * magnitude, value[1] & 0x03)

    def encode(self) -> bytes:
        magnitude = abs(self.quarter_hours)
        low = magnitude // 10 | (_SIGN_BIT if self.quarter_hours < 0 else 0)
        return bytes(((magnitude % 10) << 4 | low, self.daylight_saving_hours))
