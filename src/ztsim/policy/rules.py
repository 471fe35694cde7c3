"""Rules of every plane: who they apply to (a `Selector`) and what they match (a target).

A rule is stored and written (API, policy file) as one flat mapping: its selectors and its
plane's target fields side by side, as the DNS rules always were. Semantics, per plane:

- Rules are ordered; within a plane the first rule that applies to the subject and
  matches the target decides. With none: `dns` allows (an allow-list-only fleet blocks),
  `network` denies (private networks are closed unless a rule opens them), `attach`
  allows (the SIM state and device binding have already been checked).
- Selector: `identities`, `groups`, `fleets`, `sim_kinds`, `identity_kinds` name the
  subject if ANY of them matches (none at all: everyone in the org); then EVERY
  requirement must hold: each `posture` check passes (`!name`: does not pass) and
  each `sim` condition holds (`sim.swap_age < 24h`, `not sim.swap_recent`).
- Targets: `dns` domains / lists / categories / qtypes (any of the name selectors; none:
  every name) and an override `answer`; `network` CIDRs and domains, a protocol and
  ports; `attach` APNs (none: every APN).
- A `network` rule's destination: its `cidrs` (none: every address) or, with `domains`,
  an address in its cidrs OR an address the DNS answers of the subject's class gave for
  a name its domains match, while the answer's TTL runs (`ztsim.net.fqdn`). Domains are
  written as DNS rules write them: `example.com` the name only, `.example.com` it and
  every name below, `*.example.com` only the names below.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ztsim.errors import InvalidInput
from ztsim.policy.checks import check_name
from ztsim.policy.conditions import Condition, is_sim_path, parse
from ztsim.policy.facts import IdentityKind, SimKind, Subject

RULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
MAX_ITEMS = 10_000  # per selector or target list: a policy file is not a block list


class Plane(StrEnum):
    DNS = "dns"
    NETWORK = "network"
    ATTACH = "attach"


ACTIONS: Mapping[Plane, frozenset[str]] = {
    Plane.DNS: frozenset({"allow", "block", "override", "safe_search"}),
    Plane.NETWORK: frozenset({"allow", "deny"}),
    Plane.ATTACH: frozenset({"allow", "deny"}),
}
DEFAULT_ACTION: Mapping[Plane, str] = {
    Plane.DNS: "allow",
    Plane.NETWORK: "deny",
    Plane.ATTACH: "allow",
}
SELECTOR_FIELDS = ("identities", "groups", "fleets", "sim_kinds", "identity_kinds")
REQUIREMENT_FIELDS = ("posture", "sim")
TARGET_FIELDS: Mapping[Plane, tuple[str, ...]] = {
    Plane.DNS: ("domains", "lists", "categories", "qtypes", "answer"),
    Plane.NETWORK: ("cidrs", "domains", "protocol", "ports"),
    Plane.ATTACH: ("apns",),
}
PROTOCOLS = frozenset({"any", "tcp", "udp", "icmp"})
_NAME_ENTRY = re.compile(r"(\*\.|\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_-]{1,63}\.?")


def _strings(what: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidInput(f"{what}: a list of strings")
    if len(value) > MAX_ITEMS:
        raise InvalidInput(f"{what}: at most {MAX_ITEMS} entries")
    if not all(isinstance(item, str) and 0 < len(item) <= 500 for item in value):
        raise InvalidInput(f"{what}: a list of non-empty strings")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class PostureRequirement:
    check: str
    must_pass: bool = True  # False: written `!check`, the check must not pass

    @classmethod
    def parse(cls, text: str) -> PostureRequirement:
        negated = text.startswith("!")
        return cls(check_name(text[1:] if negated else text), not negated)

    def __str__(self) -> str:
        return self.check if self.must_pass else f"!{self.check}"


@dataclass(frozen=True, slots=True)
class Selector:
    identities: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    fleets: frozenset[str] = frozenset()
    sim_kinds: frozenset[SimKind] = frozenset()
    identity_kinds: frozenset[IdentityKind] = frozenset()
    posture: tuple[PostureRequirement, ...] = ()
    sim: tuple[Condition, ...] = ()

    @property
    def names_anyone(self) -> bool:
        """True if no subject selector is set: the rule is for everyone in the org."""
        return not (
            self.identities or self.groups or self.fleets or self.sim_kinds or self.identity_kinds
        )

    def names(self, subject: Subject) -> bool:
        """Whether the subject selectors name `subject` (requirements not considered)."""
        return self.names_anyone or bool(
            (subject.identity_id is not None and subject.identity_id in self.identities)
            or not self.groups.isdisjoint(subject.group_ids)
            or not self.fleets.isdisjoint(subject.fleet_ids)
            or (subject.sim_kind is not None and subject.sim_kind in self.sim_kinds)
            or (subject.identity_kind is not None and subject.identity_kind in self.identity_kinds)
        )


@dataclass(frozen=True, slots=True)
class PortRange:
    low: int
    high: int

    @classmethod
    def parse(cls, text: str) -> PortRange:
        low, _, high = text.partition("-")
        try:
            pair = cls(int(low), int(high or low))
        except ValueError:
            raise InvalidInput(f"port {text!r}: a number or a range like 8000-8100") from None
        if not 0 < pair.low <= pair.high <= 0xFFFF:
            raise InvalidInput(f"port {text!r}: 1 to 65535, low to high")
        return pair

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


@dataclass(frozen=True, slots=True)
class DnsTarget:
    """Checked as far as the policy needs; the DNS plane checks its rules fully
    (`ztsim.dns.policy.rules.Rule`) before any is stored."""

    domains: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    qtypes: tuple[int, ...] = ()
    answer: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NetworkTarget:
    cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    protocol: str = "any"
    ports: tuple[PortRange, ...] = ()
    # Lower case, without a final dot: `name`, `.name` (it and below), `*.name` (below).
    domains: tuple[str, ...] = ()

    @property
    def any_address(self) -> bool:
        """Whether the rule names no destination at all: every address matches."""
        return not (self.cidrs or self.domains)


@dataclass(frozen=True, slots=True)
class AttachTarget:
    apns: frozenset[str] = frozenset()  # lower case, as the AAA normalises APNs


Target = DnsTarget | NetworkTarget | AttachTarget


@dataclass(frozen=True, slots=True)
class PolicyRule:
    name: str
    plane: Plane
    action: str
    selector: Selector = field(default_factory=Selector)
    target: Target = field(default_factory=DnsTarget)

    def __post_init__(self) -> None:
        if not RULE_NAME.fullmatch(self.name):
            raise InvalidInput(f"rule name {self.name!r}: 1-100 of A-Z a-z 0-9 _ . : -")
        object.__setattr__(self, "plane", Plane(self.plane))
        if self.action not in ACTIONS[self.plane]:
            allowed = ", ".join(sorted(ACTIONS[self.plane]))
            raise InvalidInput(f"rule {self.name}: the {self.plane} plane's actions are {allowed}")
        expected = {Plane.DNS: DnsTarget, Plane.NETWORK: NetworkTarget, Plane.ATTACH: AttachTarget}
        if not isinstance(self.target, expected[self.plane]):
            raise InvalidInput(f"rule {self.name}: not a {self.plane} target")

    @classmethod
    def from_spec(cls, plane: str, name: str, action: str, spec: Mapping[str, Any]) -> PolicyRule:
        """A rule from its flat stored or written form; InvalidInput names the bad field."""
        try:
            plane_ = Plane(plane)
        except ValueError:
            raise InvalidInput(f"rule {name}: plane is one of dns, network, attach") from None
        known = {*SELECTOR_FIELDS, *REQUIREMENT_FIELDS, *TARGET_FIELDS[plane_]}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise InvalidInput(f"rule {name}: unknown fields for the {plane} plane: {unknown}")
        try:
            selector = _selector(spec)
            target = _target(plane_, spec)
        except InvalidInput as exc:
            raise InvalidInput(f"rule {name}: {exc}") from None
        return cls(name, plane_, action, selector, target)

    def to_spec(self) -> dict[str, Any]:
        """The flat form (`from_spec` reads it back): only the fields that are set."""
        s = self.selector
        out: dict[str, Any] = {
            "identities": sorted(s.identities),
            "groups": sorted(s.groups),
            "fleets": sorted(s.fleets),
            "sim_kinds": sorted(k.value for k in s.sim_kinds),
            "identity_kinds": sorted(k.value for k in s.identity_kinds),
            "posture": [str(p) for p in s.posture],
            "sim": [c.text for c in s.sim],
        }
        t = self.target
        if isinstance(t, DnsTarget):
            out |= {
                "domains": list(t.domains),
                "lists": list(t.lists),
                "categories": list(t.categories),
                "qtypes": list(t.qtypes),
                "answer": list(t.answer),
            }
        elif isinstance(t, NetworkTarget):
            out |= {
                "cidrs": [str(c) for c in t.cidrs],
                "domains": list(t.domains),
                "ports": [str(p) for p in t.ports],
            }
            if t.protocol != "any":
                out["protocol"] = t.protocol
        else:
            out["apns"] = sorted(t.apns)
        return {key: value for key, value in out.items() if value}


def _domains(entries: tuple[str, ...]) -> tuple[str, ...]:
    """Domain entries as both planes write them, in lower case; InvalidInput names a bad one."""
    domains = tuple(d.lower() for d in entries)
    bad = [d for d in domains if not _NAME_ENTRY.fullmatch(d)]
    if bad:
        raise InvalidInput(f"domains: not a name: {bad[0]!r}")
    return domains


def _selector(spec: Mapping[str, Any]) -> Selector:
    def get(key: str) -> tuple[str, ...]:
        return _strings(key, spec[key]) if key in spec else ()

    try:
        sim_kinds = frozenset(SimKind(k) for k in get("sim_kinds"))
        identity_kinds = frozenset(IdentityKind(k) for k in get("identity_kinds"))
    except ValueError as exc:
        raise InvalidInput(f"kinds: {exc}") from None
    return Selector(
        identities=frozenset(get("identities")),
        groups=frozenset(get("groups")),
        fleets=frozenset(get("fleets")),
        sim_kinds=sim_kinds,
        identity_kinds=identity_kinds,
        posture=tuple(PostureRequirement.parse(p) for p in get("posture")),
        sim=tuple(parse(text, allowed=is_sim_path) for text in get("sim")),
    )


def _target(plane: Plane, spec: Mapping[str, Any]) -> Target:
    def get(key: str) -> tuple[str, ...]:
        return _strings(key, spec[key]) if key in spec else ()

    if plane is Plane.DNS:
        qtypes = spec.get("qtypes", [])
        if not isinstance(qtypes, list | tuple) or not all(
            isinstance(q, int) and not isinstance(q, bool) and 0 < q <= 0xFFFF for q in qtypes
        ):
            raise InvalidInput("qtypes: a list of query type numbers (1-65535)")
        domains = _domains(get("domains"))
        return DnsTarget(domains, get("lists"), get("categories"), tuple(qtypes), get("answer"))
    if plane is Plane.NETWORK:
        cidrs = []
        for text in get("cidrs"):
            try:
                cidrs.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise InvalidInput(f"cidrs: not a network: {text!r}") from None
        protocol = spec.get("protocol", "any")
        if protocol not in PROTOCOLS:
            raise InvalidInput(f"protocol: one of {', '.join(sorted(PROTOCOLS))}")
        ports = tuple(PortRange.parse(p) for p in get("ports"))
        if ports and protocol not in ("tcp", "udp"):
            raise InvalidInput("ports: only with protocol tcp or udp")
        # Kept without the final dot: the written forms of one name give one rule content
        # (the nftables chain is named by it).
        names = tuple(dict.fromkeys(d.rstrip(".") for d in _domains(get("domains"))))
        return NetworkTarget(tuple(cidrs), protocol, ports, names)
    return AttachTarget(frozenset(apn.lower().rstrip(".") for apn in get("apns")))
