"""A policy class's `network` rules flattened into disjoint nftables map elements.

nft refuses overlapping interval elements, while rules overlap freely and the first
match wins (`ztsim.policy.rules`). So the rules are swept: first over the address
boundaries of their CIDRs (an elementary address interval is covered by a rule whole
or not at all), then, per interval, over protocols and ports. Each interval's
(protocol, port) pattern is reduced to maximal runs, so equal patterns compare equal
and adjacent address intervals with the same pattern merge; patterns are memoised by
the rules that reach them, so 1,000 rules with a CIDR each cost about 2,000 intervals.

Only elements whose verdict differs from the plane's default (deny) are kept: a miss
in the map falls to the class chain's final drop. With `explicit=True` (one segment of a
chain that also has FQDN rules: `ztsim.net.fqdn`) every element a rule matches is kept,
accept and drop alike, and a miss means "no rule of this segment": the packet goes on to
the chain's next rule (`Flattened.default` is then `continue`). Rules with `domains` are
not flattened here (their addresses are learned, not written): `fqdn.compile_chain`
splits them out. Protocols are IANA numbers over the
whole 0-255 range: `any` covers all of them, `icmp` is 1 for IPv4 and 58 (ICMPv6) for
IPv6. Ports matter for TCP and UDP only (a rule with ports is tcp or udp); every other
protocol's elements span ports 0-65535, so what `th dport` reads there is moot.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ztsim.errors import InvalidInput
from ztsim.policy.rules import DEFAULT_ACTION, NetworkTarget, Plane, PolicyRule

VERDICTS = {"allow": "accept", "deny": "drop"}
MISS = "continue"  # nft's verdict for "on to the next rule": an explicit segment's miss
PROTO_MAX = 0xFF  # inet_proto is 8 bits (RFC 791 §3.1 protocol, RFC 8200 §3 next header)
PORT_MAX = 0xFFFF
_PROTOCOLS = {"tcp": 6, "udp": 17}  # IANA protocol numbers
_ICMP = {4: 1, 6: 58}  # ICMP (RFC 792), ICMPv6 (RFC 4443)
_ADDRESS_MAX = {4: (1 << 32) - 1, 6: (1 << 128) - 1}

_Range = tuple[int, int]
_Rect = tuple[int, int, int, int, str]  # proto low, high, port low, high, verdict
_Line = tuple[tuple[str, tuple[_Range, ...]], ...]  # (verdict, port ranges) in rule order


@dataclass(frozen=True, slots=True)
class Element:
    """One map element: an address range, a protocol range and a port range, to a verdict."""

    family: int  # 4 or 6
    address: _Range
    protocol: _Range
    port: _Range
    verdict: str  # accept or drop

    def contains(self, address: int, protocol: int, port: int) -> bool:
        return (
            self.address[0] <= address <= self.address[1]
            and self.protocol[0] <= protocol <= self.protocol[1]
            and self.port[0] <= port <= self.port[1]
        )

    def key(self) -> dict[str, Any]:
        """The element's key as nft's JSON writes a concatenation."""
        return {
            "concat": [
                _address(self.family, *self.address),
                _span(*self.protocol),
                _span(*self.port),
            ]
        }

    def to_json(self) -> list[Any]:
        return [self.key(), {self.verdict: None}]


@dataclass(frozen=True, slots=True)
class Flattened:
    """A class's elements per address family, and what a miss means (the chain's deny, or
    `continue` for an explicit segment)."""

    v4: tuple[Element, ...]
    v6: tuple[Element, ...]
    default: str = VERDICTS[DEFAULT_ACTION[Plane.NETWORK]]

    def verdict(self, address: str, protocol: int, port: int) -> str:
        """What the map and the chain's final statement give a packet: the reference for tests."""
        ip = ipaddress.ip_address(address)
        elements = self.v4 if ip.version == 4 else self.v6
        for element in elements:
            if element.contains(int(ip), protocol, port):
                return element.verdict
        return self.default

    def __len__(self) -> int:
        return len(self.v4) + len(self.v6)


def _address(family: int, low: int, high: int) -> Any:
    make = ipaddress.IPv4Address if family == 4 else ipaddress.IPv6Address
    if low == high:
        return str(make(low))
    size = high - low + 1
    if size & (size - 1) == 0 and low % size == 0:  # an aligned power of two is a prefix
        bits = 32 if family == 4 else 128
        return {"prefix": {"addr": str(make(low)), "len": bits - size.bit_length() + 1}}
    return {"range": [str(make(low)), str(make(high))]}


def _span(low: int, high: int) -> Any:
    return low if low == high else {"range": [low, high]}


@dataclass(frozen=True, slots=True)
class _Rule:
    addresses: tuple[_Range, ...]
    protocols: tuple[_Range, ...]
    ports: tuple[_Range, ...]
    verdict: str

    @property
    def covers_all(self) -> bool:
        """Matches every protocol and port of its addresses: no later rule is reached there."""
        return self.protocols == ((0, PROTO_MAX),) and self.ports == ((0, PORT_MAX),)


def _prepare(rule: PolicyRule, family: int) -> _Rule | None:
    target = rule.target
    assert isinstance(target, NetworkTarget)
    if target.domains:
        raise InvalidInput(f"rule {rule.name}: a rule with domains is compiled by net.fqdn")
    if target.cidrs:
        addresses = tuple(
            (int(c.network_address), int(c.broadcast_address))
            for c in target.cidrs
            if c.version == family
        )
        if not addresses:
            return None  # a rule for the other family only
    else:
        addresses = ((0, _ADDRESS_MAX[family]),)
    if target.protocol == "any":
        protocols: tuple[_Range, ...] = ((0, PROTO_MAX),)
    else:
        number = _ICMP[family] if target.protocol == "icmp" else _PROTOCOLS[target.protocol]
        protocols = ((number, number),)
    ports = tuple((p.low, p.high) for p in target.ports) or ((0, PORT_MAX),)
    return _Rule(addresses, protocols, ports, VERDICTS[rule.action])


def _runs(boundaries: Iterable[int], top: int) -> list[_Range]:
    points = sorted({0, *(b for b in boundaries if 0 <= b <= top)})
    return [
        (low, (points[i + 1] - 1) if i + 1 < len(points) else top) for i, low in enumerate(points)
    ]


def _port_line(line: _Line, default: str) -> tuple[tuple[int, int, str], ...]:
    """The maximal port runs of one protocol's rules (first match wins)."""
    cuts = [edge for _, ranges in line for low, high in ranges for edge in (low, high + 1)]
    out: list[tuple[int, int, str]] = []
    for low, high in _runs(cuts, PORT_MAX):
        verdict = next((v for v, ranges in line if any(a <= low <= b for a, b in ranges)), default)
        if out and out[-1][2] == verdict and out[-1][1] + 1 == low:
            out[-1] = (out[-1][0], high, verdict)
        else:
            out.append((low, high, verdict))
    return tuple(out)


class _Sweeper:
    """Flattens one family; memoises patterns by the rules that reach an interval."""

    def __init__(self, rules: Sequence[_Rule], default: str) -> None:
        self.rules = rules
        self.default = default
        self._patterns: dict[tuple[int, ...], tuple[_Rect, ...]] = {}
        self._lines: dict[_Line, tuple[tuple[int, int, str], ...]] = {}

    def pattern(self, active: tuple[int, ...]) -> tuple[_Rect, ...]:
        found = self._patterns.get(active)
        if found is None:
            found = self._patterns[active] = self._pattern(active)
        return found

    def _pattern(self, active: tuple[int, ...]) -> tuple[_Rect, ...]:
        rules = [self.rules[i] for i in active]
        cuts = [edge for r in rules for low, high in r.protocols for edge in (low, high + 1)]
        merged: list[tuple[int, int, tuple[tuple[int, int, str], ...]]] = []
        for low, high in _runs(cuts, PROTO_MAX):
            line: _Line = tuple(
                (r.verdict, r.ports) for r in rules if any(a <= low <= b for a, b in r.protocols)
            )
            ports = self._lines.get(line)
            if ports is None:
                ports = self._lines[line] = _port_line(line, self.default)
            if merged and merged[-1][2] == ports:
                merged[-1] = (merged[-1][0], high, ports)
            else:
                merged.append((low, high, ports))
        return tuple(
            (p_low, p_high, low, high, verdict)
            for p_low, p_high, ports in merged
            for low, high, verdict in ports
            if verdict != self.default
        )

    def elements(self, family: int) -> tuple[Element, ...]:
        starts: dict[int, list[int]] = {}
        ends: dict[int, list[int]] = {}
        for index, rule in enumerate(self.rules):
            for low, high in rule.addresses:
                starts.setdefault(low, []).append(index)
                ends.setdefault(high + 1, []).append(index)
        active: dict[int, int] = {}  # rule index -> how many of its ranges cover here
        runs: list[tuple[int, int, tuple[_Rect, ...]]] = []
        for low, high in _runs([*starts, *ends], _ADDRESS_MAX[family]):
            for index in ends.get(low, ()):
                active[index] -= 1
                if not active[index]:
                    del active[index]
            for index in starts.get(low, ()):
                active[index] = active.get(index, 0) + 1
            reached: list[int] = []
            for index in sorted(active):
                reached.append(index)
                if self.rules[index].covers_all:
                    break
            pattern = self.pattern(tuple(reached))
            if runs and runs[-1][2] == pattern:
                runs[-1] = (runs[-1][0], high, pattern)
            else:
                runs.append((low, high, pattern))
        return tuple(
            Element(family, (low, high), (r[0], r[1]), (r[2], r[3]), r[4])
            for low, high, pattern in runs
            for r in pattern
        )


def flatten(rules: Iterable[PolicyRule], *, explicit: bool = False) -> Flattened:
    """The disjoint elements for one class's `network` rules, in order (the rules that
    apply to the class: selectors and requirements already decided; others are ignored).
    `explicit`: keep every matched element, a miss continues (see the module's docstring).
    InvalidInput for a rule with domains."""
    network = [r for r in rules if r.plane is Plane.NETWORK]
    default = MISS if explicit else VERDICTS[DEFAULT_ACTION[Plane.NETWORK]]
    out: dict[int, tuple[Element, ...]] = {}
    for family in (4, 6):
        prepared = [p for p in (_prepare(r, family) for r in network) if p is not None]
        out[family] = _Sweeper(prepared, default).elements(family)
    return Flattened(out[4], out[6], default)
