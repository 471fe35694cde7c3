"""What a decision is asked about, one value per plane, and whether a rule's target matches it.

A `DnsQuery` is a name and a query type, a `Flow` an address with a protocol and
perhaps a port (and the names that address is known under for the subject at the time:
what its class's DNS answers gave), an `AttachRequest` an APN. `matches` applies a rule's target fields as
`ztsim.policy.rules` defines them; DNS list and category membership is the caller's
knowledge, asked through a `ListMatcher`. `parse_target` reads the short forms a person
types into `policy explain` ("example.com/AAAA", "10.1.2.3:443/tcp", "internet",
"10.1.2.3:443/tcp as intranet.example.com").
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ztsim.errors import InvalidInput
from ztsim.policy.rules import DnsTarget, NetworkTarget, Plane, PolicyRule

# Asked `lists(source, qname)`, where source is `list:<name>` or `category:<name>`: the
# prefixes keep an org's own list names apart from the fixed category names.
ListMatcher = Callable[[str, str], bool]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

QTYPES: dict[str, int] = {
    "A": 1,
    "NS": 2,
    "CNAME": 5,
    "SOA": 6,
    "PTR": 12,
    "MX": 15,
    "TXT": 16,
    "AAAA": 28,
    "SRV": 33,
    "SVCB": 64,
    "HTTPS": 65,
    "CAA": 257,
    "ANY": 255,
}
FLOW_PROTOCOLS = ("tcp", "udp", "icmp")
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_KNOWN_AS = re.compile(r"(.*?)\s+as(?:\s+(.*))?", re.DOTALL)  # `<flow> as <names>`
_APN = re.compile(r"[a-z0-9]([a-z0-9.-]{0,98}[a-z0-9])?")


def no_lists(source: str, qname: str) -> bool:
    """The matcher for a policy with no lists: no list or category contains anything."""
    return False


def list_source(name: str) -> str:
    return f"list:{name}"


def category_source(name: str) -> str:
    return f"category:{name}"


def _qname(text: str) -> str:
    name = text.strip().lower()
    name = name[:-1] if name.endswith(".") else name
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(p) for p in name.split(".")):
        raise InvalidInput(f"{text!r} is not a domain name")
    return name


@dataclass(frozen=True, slots=True)
class DnsQuery:
    """A DNS question: the name in lower case without its final dot, and the query type."""

    qname: str
    qtype: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "qname", _qname(self.qname))
        if isinstance(self.qtype, bool) or not isinstance(self.qtype, int):
            raise InvalidInput("a query type is a number")
        if not 0 < self.qtype <= 0xFFFF:
            raise InvalidInput(f"query type {self.qtype}: 1 to 65535")


@dataclass(frozen=True, slots=True)
class Flow:
    """A connection a SIM opens: to `address`, over `protocol`, to `port` (None: any).
    `names`: the names `address` is known under for the subject now (the DNS answers its
    class was given whose TTL still runs); a `network` rule's `domains` match those."""

    address: str
    protocol: str = "tcp"
    port: int | None = None
    names: frozenset[str] = frozenset()
    ip: Address = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            ip = ipaddress.ip_address(self.address)
        except ValueError:
            raise InvalidInput(f"{self.address!r} is not an IPv4 or IPv6 address") from None
        object.__setattr__(self, "address", str(ip))
        object.__setattr__(self, "ip", ip)
        if self.protocol not in FLOW_PROTOCOLS:
            raise InvalidInput(f"protocol {self.protocol!r}: one of tcp, udp, icmp")
        if self.port is not None:
            if self.protocol == "icmp":
                raise InvalidInput("icmp has no ports")
            if isinstance(self.port, bool) or not 0 < self.port <= 0xFFFF:
                raise InvalidInput(f"port {self.port}: 1 to 65535")
        if isinstance(self.names, str) or not isinstance(self.names, frozenset | set | tuple):
            raise InvalidInput("names: a set of domain names")
        object.__setattr__(self, "names", frozenset(_qname(n) for n in self.names))


@dataclass(frozen=True, slots=True)
class AttachRequest:
    """A SIM asking to attach to an APN (lower case, as the AAA normalises it)."""

    apn: str

    def __post_init__(self) -> None:
        apn = self.apn.strip().lower().rstrip(".")
        if not _APN.fullmatch(apn):
            raise InvalidInput(f"{self.apn!r} is not an APN")
        object.__setattr__(self, "apn", apn)


Query = DnsQuery | Flow | AttachRequest
PLANE_OF: dict[type, Plane] = {
    DnsQuery: Plane.DNS,
    Flow: Plane.NETWORK,
    AttachRequest: Plane.ATTACH,
}


def domain_matches(entry: str, qname: str) -> bool:
    """`example.com` the name only, `.example.com` it and below, `*.example.com` only below."""
    if entry.endswith("."):
        entry = entry[:-1]
    if entry.startswith("*."):
        return qname.endswith(entry[1:])
    if entry.startswith("."):
        return qname == entry[1:] or qname.endswith(entry)
    return qname == entry


def _dns(target: DnsTarget, query: DnsQuery, lists: ListMatcher) -> bool:
    if target.qtypes and query.qtype not in target.qtypes:
        return False
    if not (target.domains or target.lists or target.categories):
        return True
    name = query.qname
    return (
        any(domain_matches(entry, name) for entry in target.domains)
        or any(lists(list_source(x), name) for x in target.lists)
        or any(lists(category_source(x), name) for x in target.categories)
    )


def _network(target: NetworkTarget, flow: Flow) -> bool:
    if not target.any_address and not (
        any(flow.ip in cidr for cidr in target.cidrs)
        or any(domain_matches(entry, name) for entry in target.domains for name in flow.names)
    ):
        return False
    if target.protocol != "any" and target.protocol != flow.protocol:
        return False
    if not target.ports:
        return True
    # A question about no port in particular is not answered by a rule for some ports.
    port = flow.port
    return port is not None and any(r.low <= port <= r.high for r in target.ports)


def matches(rule: PolicyRule, target: Query, lists: ListMatcher = no_lists) -> bool:
    """Whether the rule's target fields match; a target of another plane never does."""
    t = rule.target
    if isinstance(t, DnsTarget):
        return isinstance(target, DnsQuery) and _dns(t, target, lists)
    if isinstance(t, NetworkTarget):
        return isinstance(target, Flow) and _network(t, target)
    return isinstance(target, AttachRequest) and (not t.apns or target.apn in t.apns)


def parse_target(plane: str, text: str) -> Query:
    """A target from its short written form; InvalidInput says what form was expected."""
    try:
        plane_ = Plane(plane)
    except ValueError:
        raise InvalidInput("plane is one of dns, network, attach") from None
    text = text.strip()
    if not text or len(text) > 300:
        raise InvalidInput(f"a {plane_} target is 1 to 300 characters")
    if plane_ is Plane.DNS:
        return _parse_query(text)
    if plane_ is Plane.NETWORK:
        return _parse_flow(text)
    return AttachRequest(text)


def _parse_query(text: str) -> DnsQuery:
    name, slash, kind = text.partition("/")
    if not slash:
        return DnsQuery(name)
    kind = kind.strip().upper()
    if kind.isdigit():
        return DnsQuery(name, int(kind))
    if kind not in QTYPES:
        raise InvalidInput(f"query type {kind!r}: a number or one of {', '.join(sorted(QTYPES))}")
    return DnsQuery(name, QTYPES[kind])


def _parse_flow(text: str) -> Flow:
    form = (
        "an address, address/protocol or address:port/protocol (IPv6 in [ ] with a port), "
        "then perhaps `as` and the names it is known under (comma-separated)"
    )
    names: frozenset[str] = frozenset()
    known = _KNOWN_AS.fullmatch(text)
    if known is not None:
        text, named = known.group(1), known.group(2) or ""
        names = frozenset(n.strip() for n in named.split(",") if n.strip())
        if not names:
            raise InvalidInput(f"{text!r}: `as` needs at least one name")
    host, slash, protocol = text.rpartition("/")
    if not slash:
        host, protocol = text, ""
    protocol = protocol.strip().lower()
    if protocol and protocol not in FLOW_PROTOCOLS:
        raise InvalidInput(f"{text!r}: protocol is one of tcp, udp, icmp; expected {form}")
    port_text = ""
    if host.startswith("["):
        inner, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise InvalidInput(f"{text!r}: expected {form}")
        host, port_text = inner, rest[1:]
    elif host.count(":") == 1:
        host, _, port_text = host.partition(":")
    port: int | None = None
    if port_text:
        if not port_text.isdigit():
            raise InvalidInput(f"{text!r}: the port is a number")
        port = int(port_text)
    try:
        return Flow(host, protocol or "tcp", port, names)
    except InvalidInput as exc:
        raise InvalidInput(f"{text!r}: {exc}") from None
