"""Sites and the private networks behind them: pure values and their checks.

A site is where a tunnel from the ztsim gateway ends: its underlay `endpoint` and UDP
`port`, the tunnel kind, the VNI that names the tunnel on the gateway and, for Geneve,
what the tunnel carries inside (`inner`: bare IP, or Ethernet frames for a site whose
Geneve takes nothing else, such as Open vSwitch's userspace datapath). A network is
a prefix behind one site: traffic from a SIM's address to it is judged by the `network`
rules of the SIM's policy class and, when allowed, carried over that site's tunnel.

Every check raises `InvalidInput` with a message that names the field and the rule, so
the API and the CLI can show it as it is.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)

from ztsim.errors import InvalidInput

Address = IPv4Address | IPv6Address
Prefix = IPv4Network | IPv6Network


class TunnelKind(StrEnum):
    GENEVE = "geneve"  # carries the subject's identity in an option (RFC 8926)
    VXLAN = "vxlan"  # the kernel's fast tunnel, when no option is needed (RFC 7348)


# RFC 8926 §3.3: the IANA-assigned Geneve UDP destination port.
GENEVE_PORT = 6081
# RFC 7348 §5: the IANA-assigned VXLAN UDP destination port.
VXLAN_PORT = 4789
_DEFAULT_PORTS = {TunnelKind.GENEVE: GENEVE_PORT, TunnelKind.VXLAN: VXLAN_PORT}
# RFC 8926 §3.4 (and RFC 7348 §5): the VNI is a 24-bit field. 0 is refused so that an
# unset or zeroed field never names a tunnel.
MIN_VNI, MAX_VNI = 1, 2**24 - 1
MAX_NAME = 100  # the tables' name columns

# Prefixes that are never behind a site: a route to them through a tunnel would take
# traffic the gateway itself needs or cannot forward.
_NOT_ROUTABLE: tuple[tuple[Prefix, str], ...] = (
    (IPv4Network("224.0.0.0/4"), "multicast"),  # RFC 5771
    (IPv6Network("ff00::/8"), "multicast"),  # RFC 4291 §2.7
    (IPv4Network("127.0.0.0/8"), "loopback"),  # RFC 1122 §3.2.1.3
    (IPv6Network("::1/128"), "loopback"),  # RFC 4291 §2.5.3
    (IPv4Network("169.254.0.0/16"), "link-local"),  # RFC 3927 §2.1
    (IPv6Network("fe80::/10"), "link-local"),  # RFC 4291 §2.5.6
    (IPv4Network("0.0.0.0/32"), "unspecified"),  # RFC 1122 §3.2.1.3
    (IPv6Network("::/128"), "unspecified"),  # RFC 4291 §2.5.2
)
# RFC 4291 §2.5.5.2: IPv4-mapped IPv6 addresses; such a network is written as IPv4.
_MAPPED = IPv6Network("::ffff:0:0/96")


class Inner(StrEnum):
    """What a Geneve tunnel carries inside: its Protocol Type (RFC 8926 §3.4)."""

    IP = "ip"  # bare IPv4/IPv6 (0x0800/0x86DD): what a TUN device reads
    ETHERNET = "ethernet"  # frames (0x6558, Transparent Ethernet Bridging): Open vSwitch


# IEEE 802: six octets, written as hex pairs separated by colons (or hyphens).
_MAC = re.compile(r"[0-9a-f]{2}(?:([:-])[0-9a-f]{2})(?:\1[0-9a-f]{2}){4}")
_GATEWAY_MAC_KEY = b"ztsim gateway MAC\x00"  # keeps this hash apart from any other of an id


def tunnel_kind(text: str) -> TunnelKind:
    try:
        return TunnelKind(text.strip().lower())
    except ValueError:
        kinds = ", ".join(k.value for k in TunnelKind)
        raise InvalidInput(f"tunnel must be one of {kinds}, not {text!r}") from None


def inner_kind(text: str) -> Inner:
    try:
        return Inner(text.strip().lower())
    except ValueError:
        kinds = ", ".join(k.value for k in Inner)
        raise InvalidInput(f"inner must be one of {kinds}, not {text!r}") from None


def mac_of(text: str, what: str = "site_mac") -> str:
    """A unicast MAC address, as six lower-case hex octets separated by colons. It is
    the destination of every frame into the tunnel: a group address (the I/G bit, the
    first octet's lowest, IEEE 802) or all zeros would address no one host."""
    given = text.strip().lower()
    if not _MAC.fullmatch(given):
        raise InvalidInput(f"{what} must be a MAC address like 02:00:5e:10:00:01, not {text!r}")
    mac = given.replace("-", ":")
    if int(mac[:2], 16) & 0x01:
        raise InvalidInput(f"{what} must be a unicast MAC, not a multicast or broadcast one")
    if mac == "00:00:00:00:00:00":
        raise InvalidInput(f"{what} must not be all zeros")
    return mac


def gateway_mac_of(site_id: str) -> str:
    """ztsim's own MAC on a site's tunnel, the source of the frames it sends there:
    derived from the site's id, so it never changes while the site exists (not with its
    VNI, endpoint or name) and the site's operator can pin a neighbour entry for it.
    0x02 first: locally administered (the U/L bit, RFC 7042 §2.1), unicast (I/G clear);
    then 40 bits of SHA-256, which two sites share with odds of about 2^-40 a pair (and
    only sites behind one gateway would ever meet)."""
    digest = hashlib.sha256(_GATEWAY_MAC_KEY + site_id.encode()).digest()
    return ":".join(f"{octet:02x}" for octet in (0x02, *digest[:5]))


def default_port(kind: TunnelKind) -> int:
    return _DEFAULT_PORTS[kind]


def check_name(name: str, what: str = "name") -> str:
    """A display name: stripped, 1 to 100 characters, no control characters."""
    text = name.strip()
    if not 1 <= len(text) <= MAX_NAME:
        raise InvalidInput(f"{what} must be 1 to {MAX_NAME} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise InvalidInput(f"{what} must not contain control characters")
    return text


def check_vni(vni: int) -> int:
    if isinstance(vni, bool) or not MIN_VNI <= vni <= MAX_VNI:
        raise InvalidInput(f"vni must be {MIN_VNI} to {MAX_VNI} (24 bits), not {vni!r}")
    return vni


def check_port(port: int) -> int:
    if isinstance(port, bool) or not 1 <= port <= 65535:
        raise InvalidInput(f"port must be 1 to 65535, not {port!r}")
    return port


def endpoint_of(text: str) -> Address:
    """A tunnel's underlay address: one unicast host, IPv4 or IPv6 (an IPv4-mapped IPv6
    address is taken as its IPv4 address, which is what goes on the wire)."""
    try:
        address = ip_address(text.strip())
    except ValueError:
        raise InvalidInput(f"endpoint must be an IP address, not {text!r}") from None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        raise InvalidInput("endpoint must not be the unspecified address")
    if address.is_multicast:
        raise InvalidInput("endpoint must be a unicast address, not multicast")
    if address == IPv4Address("255.255.255.255"):  # RFC 919 §7: limited broadcast
        raise InvalidInput("endpoint must be a unicast address, not broadcast")
    return address


def prefix_of(text: str) -> Prefix:
    """A network's prefix: IPv4 or IPv6, without host bits, routable to a site."""
    given = text.strip()
    try:
        prefix = ip_network(given, strict=True)
    except ValueError:
        try:
            loose = ip_network(given, strict=False)
        except ValueError:
            raise InvalidInput(
                f"cidr must be an IP prefix such as 10.1.0.0/16, not {given!r}"
            ) from None
        raise InvalidInput(f"cidr {given!r} has host bits set: did you mean {loose}?") from None
    if isinstance(prefix, IPv6Network) and prefix.overlaps(_MAPPED):
        raise InvalidInput("cidr must write an IPv4 network as IPv4, not IPv4-mapped IPv6")
    for reserved, kind in _NOT_ROUTABLE:
        if prefix.version == reserved.version and prefix.overlaps(reserved):
            raise InvalidInput(f"cidr {prefix} overlaps {kind} space ({reserved})")
    return prefix


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    org_id: str
    name: str
    tunnel: TunnelKind
    endpoint: Address
    port: int
    vni: int
    created_at: datetime
    updated_at: datetime
    inner: Inner = Inner.IP
    site_mac: str | None = None  # the host or router behind the site's end: inner ethernet

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", check_name(self.name))
        object.__setattr__(self, "tunnel", TunnelKind(self.tunnel))
        object.__setattr__(self, "endpoint", endpoint_of(str(self.endpoint)))
        check_port(self.port)
        check_vni(self.vni)
        object.__setattr__(self, "inner", Inner(self.inner))
        if self.site_mac is not None:
            object.__setattr__(self, "site_mac", mac_of(self.site_mac))
        self._check_inner()

    def _check_inner(self) -> None:
        if self.inner is Inner.IP:
            if self.site_mac is not None:
                raise InvalidInput(
                    "site_mac is only for inner ethernet: give inner ethernet with it"
                )
            return
        if self.tunnel is not TunnelKind.GENEVE:
            raise InvalidInput(
                f"inner ethernet is for geneve sites: {self.tunnel} carries Ethernet frames "
                "by itself (RFC 7348 §5)"
            )
        if self.site_mac is None:
            raise InvalidInput(
                "site_mac is required with inner ethernet: the MAC of the host or router "
                "behind the site's end of the tunnel"
            )
        if self.site_mac == gateway_mac_of(self.id):
            raise InvalidInput(f"site_mac must not be ztsim's own MAC here ({self.site_mac})")

    @property
    def gateway_mac(self) -> str | None:
        """ztsim's MAC on this site's tunnel (None: no frames, nothing to pin)."""
        return gateway_mac_of(self.id) if self.inner is Inner.ETHERNET else None

    def changed(
        self,
        now: datetime,
        *,
        name: str | None = None,
        tunnel: TunnelKind | None = None,
        endpoint: Address | None = None,
        port: int | None = None,
        vni: int | None = None,
        inner: Inner | None = None,
        site_mac: str | None = None,
    ) -> Site:
        """This site with the given fields replaced. A new tunnel kind without a port
        moves a site on the old kind's standard port to the new kind's; a port chosen
        by hand is kept. A site moved to VXLAN without an `inner` carries IP (VXLAN
        frames its packets itself), and a site that carries IP has no `site_mac`: the
        MAC of a site moved back to Ethernet is given again, never a stale one."""
        kind = self.tunnel if tunnel is None else tunnel
        if port is None:
            standard = self.port == default_port(self.tunnel)
            port = default_port(kind) if standard else self.port
        if inner is None:
            inner = Inner.IP if kind is TunnelKind.VXLAN else self.inner
        if site_mac is None and inner is Inner.ETHERNET:
            site_mac = self.site_mac
        return replace(
            self,
            name=self.name if name is None else name,
            tunnel=kind,
            endpoint=self.endpoint if endpoint is None else endpoint,
            port=port,
            vni=self.vni if vni is None else vni,
            inner=inner,
            site_mac=site_mac,
            updated_at=now,
        )


def new_site(
    site_id: str,
    org_id: str,
    *,
    name: str,
    tunnel: TunnelKind,
    endpoint: str,
    port: int | None,
    vni: int,
    now: datetime,
    inner: Inner = Inner.IP,
    site_mac: str | None = None,
) -> Site:
    """A site from what a caller gave; the port defaults to the tunnel's standard port."""
    return Site(
        site_id,
        org_id,
        name,
        tunnel,
        endpoint_of(endpoint),
        default_port(tunnel) if port is None else port,
        vni,
        now,
        now,
        inner,
        site_mac,
    )


@dataclass(frozen=True, slots=True)
class Network:
    id: str
    org_id: str
    site_id: str
    name: str
    cidr: Prefix
    created_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", check_name(self.name))
        object.__setattr__(self, "cidr", prefix_of(str(self.cidr)))
