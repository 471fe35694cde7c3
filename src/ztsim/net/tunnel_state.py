"""What the gateway has of ztsim's tunnels, as values: its devices and their names and
MTUs, its routes into them, the Geneve endpoint's configuration, the underlay.

`tunnel_plan` compares these with the sites to carry; `serve.tunnels` reads them from
the kernel (`ip -j`) and runs the plan's steps. Pure, no I/O.

Devices are named from the VNI, a key that is stable and unique across orgs, so a
site renamed keeps its device and a site given another VNI gets a new one: `ztv<vni>`
for a kernel VXLAN site, one shared `ztg0` for every Geneve site. Only devices with
these names (`is_ours`), and the routes through them, are ztsim's: the rest of the host
is the deployment's.

A device's MTU is the underlay's less what the outer headers add (`mtus`). The MTU of
a Geneve site with Ethernet inside is its routes', not the device's (`ethernet_mtu`):
the frame costs 14 octets more, and only that site's traffic pays them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address

from ztsim.net.geneve import ETHERNET_HEADER_LENGTH, EthernetFraming
from ztsim.net.sites import Prefix

GENEVE_DEVICE = "ztg0"
_VXLAN_PREFIX = "ztv"
_OURS = re.compile(rf"^(?:{_VXLAN_PREFIX}[0-9]{{1,8}}|{GENEVE_DEVICE})$")

# Octets the outer headers add. RFC 7348 §5: outer IP, UDP (8), VXLAN (8) and the inner
# Ethernet header (14); RFC 8926 §3: outer IP, UDP (8), Geneve (8) and its options.
_IP_HEADER = {4: 20, 6: 40}  # RFC 791 (no options), RFC 8200 §3
_VXLAN_OVERHEAD = 8 + 8 + 14
# ztsim's options with an identity (`identity_option`): a class option of 12 octets and
# an identity option of 20 (`net.tun.overhead(32)` over IPv4).
GENEVE_OPTIONS = 32
_GENEVE_OVERHEAD = 8 + 8 + GENEVE_OPTIONS
_MIN_MTU = 68  # RFC 791: every IPv4 device carries this much


@dataclass(frozen=True, slots=True)
class Link:
    """A device of ours as the kernel shows it; the VXLAN fields are None on the TUN."""

    name: str
    kind: str
    mtu: int
    up: bool
    vni: int | None = None
    remote: str | None = None
    local: str | None = None
    port: int | None = None


@dataclass(frozen=True, slots=True)
class GeneveSite:
    site_id: str
    vni: int
    address: str
    port: int
    ethernet: EthernetFraming | None = None  # None: bare IP inside


@dataclass(frozen=True, slots=True)
class Route:
    """A route of ours: a prefix into one of our devices, with an MTU of its own (None:
    the device's)."""

    prefix: Prefix
    device: str
    mtu: int | None = None


@dataclass(frozen=True, slots=True)
class GeneveConfig:
    """What the userspace endpoint holds: its sites, and which prefix goes to which."""

    sites: tuple[GeneveSite, ...]
    routes: tuple[tuple[str, str], ...]  # (prefix, site id)


@dataclass(frozen=True, slots=True)
class State:
    """What the gateway has: our links by name, our routes, and the configuration the
    Geneve endpoint runs with (None: no endpoint)."""

    links: Mapping[str, Link]
    routes: frozenset[Route]
    geneve: GeneveConfig | None = None


@dataclass(frozen=True, slots=True)
class Underlay:
    address: str
    mtu: int


def vxlan_device(vni: int) -> str:
    return f"{_VXLAN_PREFIX}{vni}"


def is_ours(name: str) -> bool:
    return _OURS.match(name) is not None


def mtus(underlay: Underlay) -> tuple[int, int]:
    """(VXLAN, Geneve) device MTUs: the underlay's less what the outer headers add."""
    family = ip_address(underlay.address).version
    outer = _IP_HEADER[family]
    vxlan = max(_MIN_MTU, underlay.mtu - outer - _VXLAN_OVERHEAD)
    return vxlan, max(_MIN_MTU, underlay.mtu - outer - _GENEVE_OVERHEAD)


def ethernet_mtu(underlay: Underlay) -> int:
    """The MTU of the routes to a Geneve site with Ethernet inside: the Geneve device's
    less the frame's header (IEEE 802.3: 14 octets, no VLAN tag, no FCS in a tunnel)."""
    return max(_MIN_MTU, mtus(underlay)[1] - ETHERNET_HEADER_LENGTH)
