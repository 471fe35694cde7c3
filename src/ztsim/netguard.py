"""Which addresses an outbound request (URL lists today; sinks and webhooks later) may
reach. Pure: URLs and addresses in, a target or `NotAllowed` out; `outbound` resolves
and connects.

Refused unless an admin allows a range explicitly: every address that is not globally
routable (loopback, RFC 1918 and RFC 4193 private, RFC 6598 shared (CGNAT), link-local,
unspecified, documentation, reserved), multicast, and the clouds' metadata services.
IPv4 inside IPv6 (mapped, NAT64, 6to4, Teredo) is judged by the IPv4 address it
carries. A metadata address is reachable only through an allowed range naming that one
address: allowing 169.254.0.0/16 does not open 169.254.169.254.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from ztsim.errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
# Instance metadata: AWS, GCP, Azure, OpenStack (169.254.169.254), AWS over IPv6,
# AWS ECS task metadata, Alibaba Cloud, Oracle Cloud.
METADATA: frozenset[Address] = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200", "192.0.0.192")
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 §2.1: the well-known prefix


class NotAllowed(InvalidInput):
    """One message whatever the reason: which check failed is not for the requester."""

    def __init__(self) -> None:
        super().__init__("the URL's address is not allowed")


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str  # "http" or "https"
    host: str  # a name, or an address without brackets
    port: int
    path: str  # path and query, at least "/"


def parse_ranges(texts: Iterable[str]) -> tuple[Network, ...]:
    """Admin-allowed ranges ("127.0.0.0/8", "fd00::/8", a bare address); InvalidInput."""
    ranges: list[Network] = []
    for text in texts:
        try:
            ranges.append(ipaddress.ip_network(text.strip(), strict=True))
        except ValueError:
            raise InvalidInput(f"{text!r} is not an address range") from None
    return tuple(ranges)


def parse_target(url: str) -> Target:
    """An http(s) URL with a host and no credentials; InvalidInput otherwise."""
    if len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput("the URL is not a valid http or https URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput("the URL is not a valid http or https URL") from None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host or "@" in parts.netloc:
        raise InvalidInput("the URL is not a valid http or https URL (no credentials)")
    if "%" in host:  # an IPv6 zone names an interface of this machine
        raise NotAllowed()
    default = 443 if parts.scheme == "https" else 80
    path = parts.path or "/"
    return Target(
        parts.scheme, host, port or default, path + (f"?{parts.query}" if parts.query else "")
    )


def _carried(address: Address) -> Address:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_allowed(address: Address, allowed: Sequence[Network]) -> bool:
    def inside(a: Address) -> list[Network]:
        return [r for r in allowed if r.version == a.version and a in r]

    for candidate in dict.fromkeys((address, _carried(address))):
        if candidate in METADATA and not any(r.num_addresses == 1 for r in inside(candidate)):
            return False
    carried = _carried(address)
    if inside(address) or inside(carried):
        return True
    return carried.is_global and not carried.is_multicast


def check_addresses(addresses: Iterable[str], allowed: Sequence[Network]) -> Address:
    """The first of a name's resolved addresses, to connect to; NotAllowed when there are
    none or when any one of them is refused (a name cannot mix in an internal address)."""
    parsed: list[Address] = []
    for text in addresses:
        try:
            parsed.append(ipaddress.ip_address(text))
        except ValueError:
            raise NotAllowed() from None
    if not parsed or not all(address_allowed(a, allowed) for a in parsed):
        raise NotAllowed()
    return parsed[0]
