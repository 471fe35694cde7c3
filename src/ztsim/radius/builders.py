"""Attributes the server puts in replies, built from typed values.

IPv4 DNS servers: neither RFC 2865 nor TS 29.061 defines an attribute, so
gateways commonly read Microsoft's MS-Primary-DNS-Server/MS-Secondary-DNS-Server
(vendor 311, types 28/29). IPv6 DNS servers use RFC 6911's
DNS-Server-IPv6-Address (169), which TS 29.061 gateways also accept.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address, IPv6Network

from ztsim.radius.dictionary import make_attribute
from ztsim.radius.errors import RadiusEncodeError
from ztsim.radius.packet import MAX_ATTRIBUTE_VALUE_LENGTH, Attribute
from ztsim.radius.values import ErrorCause

# RFC 2865 §5.27: Session-Timeout is a 32-bit count of seconds.
_MAX_U32 = 2**32 - 1


def framed_ip_address(address: IPv4Address | str) -> Attribute:
    """Framed-IP-Address (RFC 2865 §5.8): the UE's IPv4 address."""
    return make_attribute("Framed-IP-Address", IPv4Address(address))


def framed_ipv6_prefix(prefix: IPv6Network | str) -> Attribute:
    """Framed-IPv6-Prefix (RFC 3162 §2.3)."""
    return make_attribute("Framed-IPv6-Prefix", IPv6Network(prefix))


def session_timeout(seconds: int) -> Attribute:
    """Session-Timeout (RFC 2865 §5.27) in seconds."""
    if isinstance(seconds, bool) or not 0 <= seconds <= _MAX_U32:
        raise RadiusEncodeError("Session-Timeout must be 0..2**32-1 seconds")
    return make_attribute("Session-Timeout", seconds)


def reply_messages(text: str) -> tuple[Attribute, ...]:
    """Reply-Message (RFC 2865 §5.18), split on UTF-8 boundaries into <=253-octet parts.

    RFC 2865 §5.18 lets a reply carry several, shown in packet order.
    """
    parts: list[Attribute] = []
    chunk = ""
    for char in text:
        if len((chunk + char).encode()) > MAX_ATTRIBUTE_VALUE_LENGTH:
            parts.append(make_attribute("Reply-Message", chunk))
            chunk = ""
        chunk += char
    if chunk or not parts:
        parts.append(make_attribute("Reply-Message", chunk))
    return tuple(parts)


def ipv4_dns_servers(
    primary: IPv4Address | str, secondary: IPv4Address | str | None = None
) -> tuple[Attribute, ...]:
    """MS-Primary-DNS-Server and optionally MS-Secondary-DNS-Server (vendor 311)."""
    found = [make_attribute("MS-Primary-DNS-Server", IPv4Address(primary))]
    if secondary is not None:
        found.append(make_attribute("MS-Secondary-DNS-Server", IPv4Address(secondary)))
    return tuple(found)


def ipv6_dns_servers(servers: Iterable[IPv6Address | str]) -> tuple[Attribute, ...]:
    """One DNS-Server-IPv6-Address (RFC 6911 §3.2) per server, in preference order."""
    return tuple(make_attribute("DNS-Server-IPv6-Address", IPv6Address(s)) for s in servers)


def error_cause(cause: ErrorCause) -> Attribute:
    """Error-Cause (RFC 5176 §3.5) for Disconnect/CoA NAKs."""
    return make_attribute("Error-Cause", cause)
