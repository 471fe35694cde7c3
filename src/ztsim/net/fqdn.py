"""FQDN targets in `network` rules: a class chain in segments, and the addresses its DNS
answers taught it, with their expiries. Pure: no I/O, times are the caller's.

A rule with `domains` matches an address only once a DNS answer has named it: the DNS
gateway tells the net role what it answered (requester, name, addresses, TTL), and the
role adds the addresses to a set per FQDN rule of the requester's chain whose domains
match the name, each element with a kernel timeout. So the chain can no longer be one
interval map: `compile_chain` splits it in rule order into segments, each maximal run of
CIDR-only rules one map (flattened `explicit`ly: a miss goes on to the next segment) and
each FQDN rule one set lookup (a rule with both is its CIDR part, then its FQDN part). A
chain without FQDN rules stays one `Flattened`, compiled exactly as before.

Sets belong to chains, and chains to classes: what one subject's answer teaches, every
subject of its class may reach. They share every rule, so each of them would be answered
the same for the same name.

Timeouts: `timeout(ttl)` is the TTL, but at least `FLOOR_SECONDS` and at most
`CAP_SECONDS`. The floor, because clients do not forget an answer when its TTL ends:
stub resolvers and browsers keep names for a minute or so whatever the TTL (and a TTL of
0 or 1 s, common behind load balancers, would otherwise expire before the SYN that
follows the answer). The cap, because an address a name stopped giving should not stay
open for weeks on a long TTL. Open connections outlive their element (conntrack admits
established packets before any class chain), so expiry only refuses NEW connections.

`Learned` remembers every element the kernel holds and until when (expiries only grow:
a shorter answer for an address never shortens what a longer one gave). Refreshing an
element is where kernels differ: before Linux 6.12 an `add` of an element already
present is ignored (its old timeout stands), and a `delete` of an element that has just
expired, but is not collected yet, fails the whole batch. So an element that must live
longer than the kernel's copy is refreshed by rewriting its set (flush, then every live
element with its remaining time) in the same batch: atomic, and right on every kernel.
New addresses are plain adds. An element whose expiry passed less than `SLACK_SECONDS`
ago may still be in the kernel (the batch that added it took time to apply), so it
counts as present.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from ztsim.net.ruleset import VERDICTS, Flattened, flatten
from ztsim.policy.rules import NetworkTarget, Plane, PolicyRule
from ztsim.policy.targets import domain_matches

FLOOR_SECONDS = 30
CAP_SECONDS = 86_400
SLACK_SECONDS = 2.0
MAX_PER_SET = 65_536  # addresses one FQDN rule's set holds; more are refused and counted
_PROTOCOLS = {"tcp": 6, "udp": 17}  # IANA protocol numbers
_ICMP = {4: 1, 6: 58}  # ICMP (RFC 792), ICMPv6 (RFC 4443)

SetKey = tuple[str, int, int]  # (chain name, FQDN rule index k, address family)


class Answered(NamedTuple):
    """What the DNS gateway answered a requester: `addresses` for `qname`, for `ttl` s."""

    requester: str
    qname: str
    addresses: tuple[str, ...]
    ttl: int


def timeout(ttl: int, floor: int = FLOOR_SECONDS, cap: int = CAP_SECONDS) -> int:
    """Seconds an answer's addresses stay in the sets: see the module's docstring."""
    return max(1, min(max(ttl, floor), cap))


@dataclass(frozen=True, slots=True)
class FqdnRule:
    """The FQDN part of one rule in a chain: `k` numbers it among the chain's FQDN rules
    (its sets are named by it), the rest is the rule's match and verdict."""

    k: int
    rule: str
    domains: tuple[str, ...]
    protocol: str  # any, tcp, udp, icmp
    ports: tuple[tuple[int, int], ...]
    verdict: str  # accept or drop

    def matches(self, qname: str) -> bool:
        """Whether an answer for `qname` (lower case, no final dot) fills this rule's sets."""
        return any(domain_matches(entry, qname) for entry in self.domains)

    def protocol_number(self, family: int) -> int | None:
        """The IANA protocol it is limited to (None: any)."""
        if self.protocol == "any":
            return None
        return _ICMP[family] if self.protocol == "icmp" else _PROTOCOLS[self.protocol]

    def admits(self, family: int, protocol: int, port: int) -> bool:
        """Whether the protocol and port parts match (the address part is the set's)."""
        number = self.protocol_number(family)
        if number is not None and protocol != number:
            return False
        return not self.ports or any(low <= port <= high for low, high in self.ports)


Segment = Flattened | FqdnRule


@dataclass(frozen=True, slots=True)
class Segmented:
    """A chain with FQDN rules: its segments in rule order, then the default deny."""

    segments: tuple[Segment, ...]
    default: str = VERDICTS["deny"]

    @property
    def fqdn_rules(self) -> tuple[FqdnRule, ...]:
        return tuple(s for s in self.segments if isinstance(s, FqdnRule))

    def verdict(
        self, address: str, protocol: int, port: int, members: Mapping[SetKey, Iterable[str]]
    ) -> str:
        """What the chain gives a packet when FQDN rule k's family set holds
        `members[(chain, k, family)]` (any chain name): the reference for tests."""
        ip = ipaddress.ip_address(address)
        held = {(k, f) for (_, k, f), addresses in members.items() if str(ip) in set(addresses)}
        for segment in self.segments:
            if isinstance(segment, FqdnRule):
                if (segment.k, ip.version) in held and segment.admits(ip.version, protocol, port):
                    return segment.verdict
                continue
            verdict = segment.verdict(str(ip), protocol, port)
            if verdict != segment.default:
                return verdict
        return self.default

    def __len__(self) -> int:
        """Map elements (the sets' are learned): as `len(Flattened)` counts them."""
        return sum(len(s) for s in self.segments if isinstance(s, Flattened))


Chain = Flattened | Segmented


def compile_chain(rules: Sequence[PolicyRule]) -> Chain:
    """One class's applying network rules as its chain: `flatten` when none has domains."""
    network = [r for r in rules if r.plane is Plane.NETWORK]
    if not any(_target(r).domains for r in network):
        return flatten(network)
    segments: list[Segment] = []
    run: list[PolicyRule] = []
    k = 0
    for rule in network:
        target = _target(rule)
        if not target.domains:
            run.append(rule)
            continue
        if target.cidrs:  # its CIDR part first, a segment of its own after the run
            run.append(replace(rule, target=replace(target, domains=())))
        if run:
            segments.append(flatten(run, explicit=True))
            run = []
        ports = tuple((p.low, p.high) for p in target.ports)
        verdict = VERDICTS[rule.action]
        segments.append(FqdnRule(k, rule.name, target.domains, target.protocol, ports, verdict))
        k += 1
    if run:
        segments.append(flatten(run, explicit=True))
    return Segmented(tuple(segments))


def _target(rule: PolicyRule) -> NetworkTarget:
    target = rule.target
    assert isinstance(target, NetworkTarget)
    return target


def fqdn_rules(chain: Chain | None) -> tuple[FqdnRule, ...]:
    return chain.fqdn_rules if isinstance(chain, Segmented) else ()


@dataclass(frozen=True, slots=True)
class SetUpdate:
    """One drain's change to the sets: elements to add (absent as far as `Learned`
    knows), sets to rewrite whole, both as address -> timeout in seconds; `notes` (address
    -> expiry, qname) is taken in by `Learned.commit` once the kernel applied it."""

    add: Mapping[SetKey, Mapping[str, int]] = field(default_factory=dict)
    rewrite: Mapping[SetKey, Mapping[str, int]] = field(default_factory=dict)
    notes: Mapping[SetKey, Mapping[str, tuple[float, str]]] = field(default_factory=dict)
    refused: int = 0  # addresses beyond a full set

    def __bool__(self) -> bool:
        return bool(self.add or self.rewrite)


def _seconds(expiry: float, now: float) -> int:
    return max(1, math.ceil(expiry - now))


class Learned:
    """The elements the sets hold, by key: address -> (expiry, the name that taught it)."""

    def __init__(self, slack: float = SLACK_SECONDS, max_per_set: int = MAX_PER_SET) -> None:
        self.slack = slack
        self.max_per_set = max_per_set
        self._sets: dict[SetKey, dict[str, tuple[float, str]]] = {}

    def _live(self, key: SetKey, now: float) -> dict[str, tuple[float, str]]:
        """The key's elements that may still be in the kernel (expired ones dropped)."""
        held = self._sets.get(key)
        if held is None:
            return {}
        gone = [a for a, (expiry, _) in held.items() if expiry <= now - self.slack]
        for address in gone:
            del held[address]
        return held

    def plan(
        self, wanted: Mapping[SetKey, Mapping[str, tuple[float, str]]], now: float
    ) -> SetUpdate:
        """The change that makes each wanted address live until at least its expiry."""
        add: dict[SetKey, dict[str, int]] = {}
        rewrite: dict[SetKey, dict[str, int]] = {}
        notes: dict[SetKey, dict[str, tuple[float, str]]] = {}
        refused = 0
        for key, addresses in wanted.items():
            held = self._live(key, now)
            extend = False
            for address, (expiry, qname) in addresses.items():
                old = held.get(address)
                if old is not None and old[0] >= expiry:
                    continue  # it lives as long already
                if old is None and len(held) + len(notes.get(key, ())) >= self.max_per_set:
                    refused += 1
                    continue
                notes.setdefault(key, {})[address] = (expiry, qname)
                if old is None:
                    add.setdefault(key, {})[address] = _seconds(expiry, now)
                else:
                    extend = True
            if extend:
                merged = {**held, **notes[key]}
                rewrite[key] = {a: _seconds(e, now) for a, (e, _) in merged.items() if e > now}
                add.pop(key, None)
        return SetUpdate(add, rewrite, notes, refused)

    def commit(self, update: SetUpdate) -> None:
        """The kernel applied `update`: take its notes in."""
        for key, addresses in update.notes.items():
            self._sets.setdefault(key, {}).update(addresses)

    def elements(self, chains: Iterable[str], now: float) -> dict[SetKey, dict[str, int]]:
        """Every live element of these chains with its remaining seconds: what fills the
        sets of a table made anew (they start empty)."""
        keep = set(chains)
        out: dict[SetKey, dict[str, int]] = {}
        for key, held in self._sets.items():
            if key[0] in keep:
                live = {a: _seconds(e, now) for a, (e, _) in held.items() if e > now}
                if live:
                    out[key] = live
        return out

    def keep(self, chains: Iterable[str]) -> None:
        """Only these chains exist now: forget the others' sets."""
        kept = set(chains)
        for key in [k for k in self._sets if k[0] not in kept]:
            del self._sets[key]

    def forget(self, chains: Iterable[str]) -> None:
        """The chains were deleted, their sets with them."""
        gone = set(chains)
        for key in [k for k in self._sets if k[0] in gone]:
            del self._sets[key]

    def names(self, chain: str, address: str, now: float) -> frozenset[str]:
        """The names `address` is known under in `chain` now (the policy's `Flow.names`)."""
        out = set()
        for key, held in self._sets.items():
            if key[0] == chain:
                found = held.get(address)
                if found is not None and found[0] > now:
                    out.add(found[1])
        return frozenset(out)

    def members(self, now: float) -> dict[SetKey, frozenset[str]]:
        """Every set's live addresses: what the kernel's sets hold, for tests and probes."""
        return {
            key: frozenset(a for a, (e, _) in held.items() if e > now)
            for key, held in self._sets.items()
        }
