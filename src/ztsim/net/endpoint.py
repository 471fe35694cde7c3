"""A Geneve tunnel endpoint without I/O: IP packets in, datagrams out, and back.

`outbound` takes an IP packet read from the TUN device: its destination picks the site
(the longest of the site prefixes that holds it), its source the subject (the session
behind a SIM's address), and it returns the datagram to send to that site's underlay
address, carrying the subject's options. `inbound` takes a datagram from the UDP socket
and returns the inner packet to write to the TUN device, or why it was dropped. Neither
raises for anything a packet can hold: every drop is counted by reason.

The header for each (site, subject) is built once and kept; the per-packet cost is two
dict probes and one concatenation out, one parse and a few slices in.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NamedTuple

from ztsim.net.geneve import (
    CRITICAL_TYPE,
    ETHERNET_HEADER_LENGTH,
    HEADER_LENGTH,
    MAX_VNI,
    PORT,
    PROTOCOL_ETHERNET,
    PROTOCOL_IPV4,
    PROTOCOL_IPV6,
    EthernetFraming,
    GeneveError,
    header_bytes,
    options_in,
    parse,
)
from ztsim.net.identity_option import KNOWN, Subject, read_subject
from ztsim.net.tunnel_routes import TunnelRoutes

# The sender of a packet by its 4- or 16-octet source address; None: nobody known.
SubjectLookup = Callable[[bytes], Subject | None]
UnderlayAddress = tuple[str, int]

_IPV4_HEADER = 20  # RFC 791: the smallest IPv4 header
_IPV6_HEADER = 40  # RFC 8200 §3: the fixed IPv6 header
_CACHE_LIMIT = 65_536  # entries before a cache starts again (about one per subject)

# Why a packet was dropped: the counter keys.
NOT_IP: Final = "not_ip"
NO_ROUTE: Final = "no_route"
UNKNOWN_SOURCE: Final = "unknown_source"
UNKNOWN_PEER: Final = "unknown_peer"
MALFORMED: Final = "malformed"
WRONG_VNI: Final = "wrong_vni"
OAM: Final = "oam"
WRONG_PROTOCOL: Final = "wrong_protocol"
UNKNOWN_CRITICAL_OPTION: Final = "unknown_critical_option"
MALFORMED_INNER: Final = "malformed_inner"
SPOOFED_SOURCE: Final = "spoofed_source"


@dataclass(frozen=True, slots=True)
class Site:
    """A tunnel peer: its name (the site id), its VNI and its underlay address.

    `ethernet` None (the default): IP packets are carried bare (Protocol Type
    0x0800/0x86DD). Set, for a peer that takes only Ethernet inside (Open vSwitch's
    userspace Geneve): packets go out in frames with its addresses, and frames come
    back from it as well as bare IP."""

    name: str
    vni: int
    address: str
    port: int = PORT
    ethernet: EthernetFraming | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise GeneveError("a site has a name")
        if (
            isinstance(self.vni, bool)
            or not isinstance(self.vni, int)
            or not 0 <= self.vni <= MAX_VNI
        ):
            raise GeneveError(f"VNI {self.vni!r}: 0 to {MAX_VNI}")
        try:
            object.__setattr__(self, "address", str(ipaddress.ip_address(self.address)))
        except ValueError as err:
            raise GeneveError(f"{self.address!r} is not an IP address") from err
        if (
            isinstance(self.port, bool)
            or not isinstance(self.port, int)
            or not 0 < self.port <= 0xFFFF
        ):
            raise GeneveError(f"port {self.port!r}: 1 to 65535")
        if self.ethernet is not None and not isinstance(self.ethernet, EthernetFraming):
            raise GeneveError("a site's ethernet is an EthernetFraming or None")

    @property
    def underlay(self) -> UnderlayAddress:
        return (self.address, self.port)


class Delivered(NamedTuple):
    """An inner packet to write to the TUN device (a view into the datagram), the site
    it came from and the subject its options named, if any (one per packet: a named
    tuple, the cheapest typed value to make)."""

    packet: memoryview
    site: Site
    subject: Subject | None


@dataclass(frozen=True, slots=True)
class Dropped:
    reason: str


_DROPPED = {
    r: Dropped(r)
    for r in (
        UNKNOWN_PEER,
        MALFORMED,
        WRONG_VNI,
        OAM,
        WRONG_PROTOCOL,
        UNKNOWN_CRITICAL_OPTION,
        MALFORMED_INNER,
        SPOOFED_SOURCE,
    )
}


# What an options area says: its subject (or why it is refused), and whether it holds
# a critical option.
_Read = tuple[Subject | Dropped | None, bool]


def _family(packet: bytes | memoryview) -> tuple[int, int, int] | None:
    """(protocol type, source offset, address length) of an IP packet, None if it is not
    one (too short for its version's header, or another version)."""
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 4 and len(packet) >= _IPV4_HEADER:
        return PROTOCOL_IPV4, 12, 4
    if version == 6 and len(packet) >= _IPV6_HEADER:
        return PROTOCOL_IPV6, 8, 16
    return None


class Endpoint:
    """One side of the tunnels to several sites.

    `subjects` is None on an endpoint that speaks for no subjects (a site's own side,
    whose return traffic carries no options); otherwise a packet from a source it does
    not know is dropped, so nothing reaches a site unclassified. `with_identity` False
    keeps identities off the wire (the class is still carried)."""

    def __init__(
        self,
        sites: list[Site],
        routes: TunnelRoutes,
        subjects: SubjectLookup | None = None,
        *,
        with_identity: bool = True,
    ) -> None:
        self._sites = {s.name: s for s in sites}
        if len(self._sites) != len(sites):
            raise GeneveError("two sites with one name")
        self._peers = {s.address: s for s in sites}
        if len(self._peers) != len(sites):
            raise GeneveError("two sites at one underlay address")
        self._routes = routes
        self._subjects = subjects
        self._with_identity = with_identity
        self._headers: dict[tuple[str, int, Subject | None], bytes] = {}
        self._options: dict[bytes, _Read] = {}
        self.drops: Counter[str] = Counter()
        self.sent = 0
        self.received = 0
        self.last_heard: dict[str, float] = {}

    def _header(self, site: Site, protocol: int, subject: Subject | None) -> bytes:
        key = (site.name, protocol, subject)
        header = self._headers.get(key)
        if header is None:
            if len(self._headers) >= _CACHE_LIMIT:
                self._headers.clear()
            options = () if subject is None else subject.options(with_identity=self._with_identity)
            if site.ethernet is None:
                header = header_bytes(site.vni, protocol, options)
            else:
                header = header_bytes(site.vni, PROTOCOL_ETHERNET, options)
                header += site.ethernet.header(protocol)
            self._headers[key] = header
        return header

    def outbound(self, packet: bytes, now: float) -> list[tuple[UnderlayAddress, bytes]]:
        """The datagrams that carry `packet` (at most one today), none when it is dropped."""
        family = _family(packet)
        if family is None:
            self.drops[NOT_IP] += 1
            return []
        protocol, at, size = family
        site_name = self._routes.lookup(packet[at + size : at + 2 * size])
        site = None if site_name is None else self._sites.get(site_name)
        if site is None:
            self.drops[NO_ROUTE] += 1
            return []
        subject = None
        if self._subjects is not None:
            subject = self._subjects(packet[at : at + size])
            if subject is None:
                self.drops[UNKNOWN_SOURCE] += 1
                return []
        self.sent += 1
        return [(site.underlay, self._header(site, protocol, subject) + packet)]

    def inbound(
        self, datagram: bytes | memoryview, source: UnderlayAddress, now: float
    ) -> Delivered | Dropped:
        """The inner packet of a datagram from `source`, or why it was dropped. The peer
        is known by address only: senders pick their source port per flow (RFC 8926 §3.3)."""
        site = self._peers.get(source[0])
        if site is None:
            return self._drop(UNKNOWN_PEER)
        try:
            head = parse(datagram)
        except GeneveError:
            return self._drop(MALFORMED)
        if head.vni != site.vni:
            return self._drop(WRONG_VNI)
        if head.oam:
            return self._drop(OAM)  # no OAM protocol is spoken here
        protocol, start = head.protocol, head.options_end
        if protocol == PROTOCOL_ETHERNET and site.ethernet is not None:
            # The frame's type names the packet inside; its addresses are the tunnel's
            # two ends (the VNI and the underlay address named the peer already).
            start += ETHERNET_HEADER_LENGTH
            if len(datagram) < start:
                return self._drop(MALFORMED_INNER)
            protocol = int.from_bytes(datagram[start - 2 : start], "big")
        if protocol != PROTOCOL_IPV4 and protocol != PROTOCOL_IPV6:
            return self._drop(WRONG_PROTOCOL)  # a TUN device carries IP: no ARP, no VLANs
        subject = None
        if head.options_end > HEADER_LENGTH:
            read, critical = self._read_options(datagram, head.options_end)
            if isinstance(read, Dropped):
                return self._drop(read.reason)
            if critical and not head.critical:
                # A transit device that reads only C would miss the option (RFC 8926 §3.4).
                return self._drop(MALFORMED)
            subject = read
        inner = memoryview(datagram)[start:]
        family = _family(inner)
        if family is None:
            return self._drop(MALFORMED_INNER)
        version, at, size = family
        if version != protocol:
            return self._drop(WRONG_PROTOCOL)
        # A site may only send from the networks routed to it: anything else is forged.
        if self._routes.lookup(inner[at : at + size]) != site.name:
            return self._drop(SPOOFED_SOURCE)
        self.received += 1
        self.last_heard[site.name] = now
        return Delivered(inner, site, subject)

    def _read_options(self, datagram: bytes | memoryview, end: int) -> _Read:
        """The subject an options area names (or why it is refused) and whether an
        option in it is critical; kept by its bytes, since a flow repeats the same
        options in every packet."""
        area = bytes(datagram[HEADER_LENGTH:end])
        known = self._options.get(area)
        if known is not None:
            return known
        read: Subject | Dropped | None
        critical = False
        try:
            options = list(options_in(datagram, end))
            critical = any(t & CRITICAL_TYPE for _, t, _ in options)
            # RFC 8926 §3.5.1: an unrecognised critical option MUST cause a drop.
            if any(t & CRITICAL_TYPE and (c, t) not in KNOWN for c, t, _ in options):
                read = _DROPPED[UNKNOWN_CRITICAL_OPTION]
            else:
                read = read_subject(options)
        except GeneveError:
            read = _DROPPED[MALFORMED]
        if len(self._options) >= _CACHE_LIMIT:
            self._options.clear()
        known = self._options[area] = (read, critical)
        return known

    def _drop(self, reason: str) -> Dropped:
        self.drops[reason] += 1
        return _DROPPED[reason]
