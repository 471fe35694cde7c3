"""Network rules and probes for the `net` tests: Hypothesis strategies over a small address
space (so rules overlap), and the policy's reference evaluator asked about a probe."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from ztsim.policy import reference
from ztsim.policy.facts import Subject
from ztsim.policy.rules import NetworkTarget, PolicyRule
from ztsim.policy.targets import Flow

NOW = datetime(2026, 12, 3, tzinfo=UTC)
ALICE = Subject("org", "alice")
PROTO = {"tcp": 6, "udp": 17}


def rule(name: str, action: str, **spec: Any) -> PolicyRule:
    return PolicyRule.from_spec("network", name, action, spec)


def by_reference(rules: list[PolicyRule], address: str, protocol: str, port: int | None) -> str:
    flow = Flow(address, protocol, None if protocol == "icmp" else port)
    decision = reference.decide(rules, {}, ALICE, "network", flow, NOW)
    return {"allow": "accept", "deny": "drop"}[decision.action]


def number(protocol: str, address: str) -> int:
    if protocol == "icmp":
        return 1 if ipaddress.ip_address(address).version == 4 else 58
    return PROTO[protocol]


_V4 = st.builds(
    lambda a, n: f"10.0.{a}.0/{n}" if n <= 24 else f"10.0.0.{a}/{n}",
    st.integers(0, 255),
    st.integers(22, 32),
)
_V6 = st.builds(lambda a, n: f"fd00::{a:x}/{n}", st.integers(0, 255), st.integers(118, 128))
_PORTS = st.lists(
    st.builds(
        lambda a, w: f"{a}-{min(a + w, 65535)}" if w else str(a),
        st.integers(1, 40) | st.integers(1, 65535),
        st.integers(0, 15),
    ),
    max_size=3,
)


@st.composite
def rules(draw: st.DrawFn) -> tuple[list[PolicyRule], list[PolicyRule]]:
    """Every rule, and those that apply to alice's class (the rest name only bob)."""
    out: list[PolicyRule] = []
    for i in range(draw(st.integers(0, 8))):
        protocol = draw(st.sampled_from(["any", "tcp", "udp", "icmp"]))
        spec: dict[str, Any] = {"cidrs": draw(st.lists(_V4 | _V6, max_size=3))}
        if protocol != "any":
            spec["protocol"] = protocol
        if protocol in ("tcp", "udp"):
            spec["ports"] = draw(_PORTS)
        if draw(st.booleans()) and draw(st.booleans()):
            spec["identities"] = ["bob"]
        out.append(rule(f"r{i}", draw(st.sampled_from(["allow", "deny"])), **spec))
    return out, [r for r in out if r.selector.names(ALICE)]


PROBE_ADDRESS = st.builds(
    lambda a, b: f"10.0.{a}.{b}", st.integers(0, 4) | st.integers(0, 255), st.integers(0, 255)
) | st.builds(lambda a: f"fd00::{a:x}", st.integers(0, 300))
PROBE = st.tuples(
    PROBE_ADDRESS,
    st.sampled_from(["tcp", "udp", "icmp"]),
    st.integers(1, 45) | st.integers(1, 65535),
)


def _near(low: int, high: int, top: int) -> list[int]:
    return [x for x in (low - 1, low, high, high + 1) if 0 <= x <= top]


def probes(drawn: list[PolicyRule]) -> st.SearchStrategy[list[tuple[str, str, int]]]:
    """Random probes, and probes on the edges of the rules' CIDRs and port ranges (where a
    flattening is most likely wrong)."""
    edges: list[tuple[str, str, int]] = []
    for r in drawn:
        target = r.target
        assert isinstance(target, NetworkTarget)
        protocols = ["tcp", "udp", "icmp"] if target.protocol == "any" else [target.protocol]
        ports = [p for pr in target.ports for p in _near(pr.low, pr.high, 65535) if p] or [1, 65535]
        for cidr in target.cidrs:
            make = ipaddress.ip_address
            top = (1 << cidr.max_prefixlen) - 1
            first, last = int(cidr.network_address), int(cidr.broadcast_address)
            for address in _near(first, last, top):
                edges.extend((str(make(address)), p, port) for p in protocols for port in ports)
    edge = st.sampled_from(edges) if edges else PROBE
    return st.lists(PROBE | edge, min_size=1, max_size=20)
