"""Each org's network policy as the net role holds it, and what it says about one session.

An org's compiled policy (`ztsim.policy.compile.CompiledPolicy`) numbers its classes; the
role keeps with it the generation that numbering belongs to (the Geneve class tag's
first half) and each class's chain, built once from the class's applying `network`
rules. `classify` turns a live session into its `Held` (no class: revoked, or an org
without a policy), and `explain` answers the audit's question about a denied flow: who
the source is, and the first network rule that matches the flow for its class now.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime

from ztsim.net.denials import DenialContext
from ztsim.net.gateway_plan import ChainSpec, class_tag
from ztsim.net.identity_option import ClassTag
from ztsim.net.serve.holdings import Held
from ztsim.net.store.network_policy import LiveSession
from ztsim.policy import reasons
from ztsim.policy.compile import CompiledPolicy
from ztsim.policy.rules import NetworkTarget, Plane
from ztsim.policy.targets import Flow, domain_matches

_FLOW_PROTOCOLS = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}  # IANA protocol numbers


@dataclass
class OrgClasses:
    """An org's compiled policy, its generation, and each class's chain (kept)."""

    policy: CompiledPolicy
    generation: int
    chains: dict[int, ChainSpec] = field(default_factory=dict)

    def chain(self, class_id: int) -> ChainSpec:
        found = self.chains.get(class_id)
        if found is None:
            rules = self.policy.applying_rules(class_id, Plane.NETWORK)
            found = self.chains[class_id] = ChainSpec.of(rules)
        return found

    def tag(self, class_id: int) -> ClassTag:
        return class_tag(self.generation, class_id)


def classify(session: LiveSession, org: OrgClasses | None, now: datetime) -> Held:
    """The session's class now, and until when (None: no class)."""
    if session.subject is None or org is None:
        return Held(session, None, None)
    found = org.policy.classify(session.subject, now)
    return Held(session, found.class_id, found.until)


def explain(
    held: Held,
    org: OrgClasses | None,
    destination: str,
    protocol: int,
    port: int,
    names: frozenset[str] = frozenset(),
) -> DenialContext | None:
    """Who sent a denied flow and the first network rule that matches it (rule None: the
    default deny, or a session with no class); None: a destination that does not parse."""
    try:
        target = ipaddress.ip_address(destination)
    except ValueError:
        return None
    s = held.session
    if held.class_id is None or org is None:
        return DenialContext(s.org_id, s.identity_id, s.iccid, None, (s.revoked,))
    name = _FLOW_PROTOCOLS.get(protocol)
    if name is not None:
        with_port = name != "icmp" and 0 < port <= 0xFFFF
        flow = Flow(str(target), name, port if with_port else None, names)
        d = org.policy.decide(held.class_id, Plane.NETWORK, flow)
        return DenialContext(s.org_id, s.identity_id, s.iccid, d.rule, d.reasons)
    # Another protocol: only a rule for any protocol can match it (ports are TCP/UDP's).
    for rule in org.policy.applying_rules(held.class_id, Plane.NETWORK):
        t = rule.target
        assert isinstance(t, NetworkTarget)
        named = any(domain_matches(entry, n) for entry in t.domains for n in names)
        if t.protocol == "any" and (t.any_address or named or any(target in c for c in t.cidrs)):
            return DenialContext(
                s.org_id, s.identity_id, s.iccid, rule.name, (reasons.rule(rule.name),)
            )
    return DenialContext(s.org_id, s.identity_id, s.iccid, None, (reasons.DEFAULT_DENY,))
