"""Rules in their flat form: read, written back unchanged, and every way to get one wrong."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from ztsim.errors import InvalidInput
from ztsim.policy.facts import IdentityKind, SimKind, Subject
from ztsim.policy.rules import (
    MAX_ITEMS,
    AttachTarget,
    DnsTarget,
    NetworkTarget,
    Plane,
    PolicyRule,
    PortRange,
    PostureRequirement,
    Selector,
)

SPECS: list[tuple[str, str, dict[str, Any]]] = [
    ("dns", "block", {}),
    (
        "dns",
        "override",
        {
            "identities": ["alice", "bob"],
            "groups": ["staff"],
            "fleets": ["trucks"],
            "sim_kinds": ["esim", "physical"],
            "identity_kinds": ["service", "user"],
            "posture": ["managed", "!jailbroken"],
            "sim": ["sim.swap_age < 24h", "not sim.clone_suspected"],
            "domains": ["a.test", ".b.test", "*.c.test"],
            "lists": ["ads"],
            "categories": ["malware"],
            "qtypes": [1, 28],
            "answer": ["192.0.2.1"],
        },
    ),
    (
        "network",
        "allow",
        {
            "cidrs": ["10.0.0.0/8", "2001:db8::/32"],
            "protocol": "tcp",
            "ports": ["443", "8000-8100"],
        },
    ),
    ("network", "deny", {"protocol": "icmp", "groups": ["guests"]}),
    ("network", "allow", {"domains": ["intranet.acme.test", ".acme.test"], "protocol": "tcp"}),
    ("network", "allow", {"cidrs": ["10.9.0.0/16"], "domains": ["*.acme.test"]}),
    ("attach", "deny", {"apns": ["internet", "iot.corp"], "sim": ["sim.imei_mismatch"]}),
    ("attach", "allow", {}),
]


@pytest.mark.parametrize(("plane", "action", "spec"), SPECS)
def test_from_spec_to_spec_round_trip(plane: str, action: str, spec: dict[str, Any]) -> None:
    rule = PolicyRule.from_spec(plane, "r1", action, spec)
    assert rule.plane is Plane(plane)
    assert rule.to_spec() == spec
    assert PolicyRule.from_spec(plane, "r1", action, rule.to_spec()) == rule


def test_from_spec_normalises() -> None:
    rule = PolicyRule.from_spec(
        "network", "n", "allow", {"cidrs": ["10.1.2.3/8"], "protocol": "any", "ports": []}
    )
    assert rule.target == NetworkTarget((ipaddress.ip_network("10.0.0.0/8"),), "any", ())
    assert rule.to_spec() == {"cidrs": ["10.0.0.0/8"]}
    apn = PolicyRule.from_spec("attach", "a", "allow", {"apns": ["Internet."]})
    assert apn.target == AttachTarget(frozenset({"internet"}))
    dns = PolicyRule.from_spec("dns", "d", "block", {"domains": ["Ads.Example.COM"]})
    assert dns.target == DnsTarget(domains=("ads.example.com",))
    kinds = PolicyRule.from_spec("dns", "k", "block", {"sim_kinds": ["esim"]})
    assert kinds.selector.sim_kinds == frozenset({SimKind.ESIM})


@pytest.mark.parametrize(
    ("plane", "name", "action", "spec", "message"),
    [
        ("dns", "", "block", {}, "rule name"),
        ("dns", "-x", "block", {}, "rule name"),
        ("dns", "a b", "block", {}, "rule name"),
        ("dns", "x" * 101, "block", {}, "rule name"),
        ("email", "r", "block", {}, "plane is one of dns, network, attach"),
        ("dns", "r", "deny", {}, "the dns plane's actions are allow, block, override"),
        ("network", "r", "block", {}, "the network plane's actions are allow, deny"),
        ("attach", "r", "override", {}, "the attach plane's actions are allow, deny"),
        (
            "dns",
            "r",
            "block",
            {"cidrs": ["10.0.0.0/8"]},
            r"unknown fields for the dns plane: \['cidrs'\]",
        ),
        ("network", "r", "allow", {"lists": ["a"]}, "unknown fields"),
        ("attach", "r", "allow", {"ports": ["1"]}, "unknown fields"),
        ("dns", "r", "block", {"groups": "staff"}, "groups: a list of strings"),
        ("dns", "r", "block", {"groups": {"staff": 1}}, "groups: a list of strings"),
        ("dns", "r", "block", {"groups": [""]}, "groups: a list of non-empty strings"),
        ("dns", "r", "block", {"groups": [1]}, "groups: a list of non-empty strings"),
        ("dns", "r", "block", {"groups": ["x" * 501]}, "non-empty strings"),
        ("dns", "r", "block", {"identities": ["i"] * (MAX_ITEMS + 1)}, "at most 10000"),
        ("dns", "r", "block", {"sim_kinds": ["nano"]}, "kinds:"),
        ("dns", "r", "block", {"identity_kinds": ["robot"]}, "kinds:"),
        ("dns", "r", "block", {"posture": ["Managed"]}, "posture check name"),
        ("dns", "r", "block", {"posture": ["!"]}, "posture check name"),
        ("dns", "r", "block", {"sim": ["device.managed"]}, "cannot be used here"),
        ("dns", "r", "block", {"sim": ["sim.swap_age <"]}, "a value is missing"),
        ("dns", "r", "block", {"qtypes": 1}, "qtypes: a list of query type numbers"),
        ("dns", "r", "block", {"qtypes": [0]}, "qtypes"),
        ("dns", "r", "block", {"qtypes": [65536]}, "qtypes"),
        ("dns", "r", "block", {"qtypes": [True]}, "qtypes"),
        ("dns", "r", "block", {"qtypes": ["A"]}, "qtypes"),
        ("dns", "r", "block", {"domains": ["bad name"]}, "domains: not a name: 'bad name'"),
        ("dns", "r", "block", {"domains": ["a..b"]}, "domains: not a name"),
        ("dns", "r", "block", {"domains": ["**.a"]}, "domains: not a name"),
        ("network", "r", "allow", {"cidrs": ["10.0.0.0/33"]}, "cidrs: not a network"),
        ("network", "r", "allow", {"cidrs": ["example.com"]}, "cidrs: not a network"),
        ("network", "r", "allow", {"protocol": "sctp"}, "protocol: one of any, icmp, tcp, udp"),
        ("network", "r", "allow", {"ports": ["443"]}, "ports: only with protocol tcp or udp"),
        ("network", "r", "allow", {"protocol": "icmp", "ports": ["1"]}, "only with protocol"),
        ("network", "r", "allow", {"protocol": "tcp", "ports": ["https"]}, "a number or a range"),
        ("network", "r", "allow", {"protocol": "tcp", "ports": ["0"]}, "1 to 65535"),
        ("network", "r", "allow", {"protocol": "tcp", "ports": ["65536"]}, "1 to 65535"),
        ("network", "r", "allow", {"protocol": "tcp", "ports": ["90-80"]}, "low to high"),
        ("attach", "r", "allow", {"apns": "internet"}, "apns: a list of strings"),
    ],
)
def test_every_validation_error_names_its_field(
    plane: str, name: str, action: str, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        PolicyRule.from_spec(plane, name, action, spec)


def test_a_rule_holds_a_target_of_its_own_plane() -> None:
    with pytest.raises(InvalidInput, match="not a network target"):
        PolicyRule("r", Plane.NETWORK, "allow", target=DnsTarget())
    with pytest.raises(InvalidInput, match="not a dns target"):
        PolicyRule("r", Plane.DNS, "allow", target=AttachTarget())
    assert PolicyRule("r", "attach", "deny", target=AttachTarget()).plane is Plane.ATTACH  # type: ignore[arg-type]


def test_posture_requirements_and_port_ranges_print_as_written() -> None:
    assert PostureRequirement.parse("!jailbroken") == PostureRequirement("jailbroken", False)
    assert str(PostureRequirement.parse("!jailbroken")) == "!jailbroken"
    assert str(PostureRequirement.parse("managed")) == "managed"
    assert PortRange.parse("443") == PortRange(443, 443)
    assert str(PortRange.parse("80-90")) == "80-90"
    assert str(PortRange.parse("80-80")) == "80"


ALICE = Subject(
    "o",
    "alice",
    IdentityKind.USER,
    frozenset({"staff"}),
    frozenset({"trucks"}),
    SimKind.ESIM,
)


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        (Selector(), True),
        (Selector(identities=frozenset({"alice"})), True),
        (Selector(identities=frozenset({"bob"})), False),
        (Selector(groups=frozenset({"staff", "x"})), True),
        (Selector(groups=frozenset({"x"})), False),
        (Selector(fleets=frozenset({"trucks"})), True),
        (Selector(sim_kinds=frozenset({SimKind.ESIM})), True),
        (Selector(sim_kinds=frozenset({SimKind.PHYSICAL})), False),
        (Selector(identity_kinds=frozenset({IdentityKind.USER})), True),
        (Selector(identity_kinds=frozenset({IdentityKind.SERVICE})), False),
        # Any one selector naming the subject is enough.
        (Selector(identities=frozenset({"bob"}), fleets=frozenset({"trucks"})), True),
        # Requirements are not part of naming.
        (Selector(posture=(PostureRequirement("managed"),)), True),
    ],
)
def test_selectors_name_a_subject_if_any_matches(selector: Selector, names: bool) -> None:
    assert selector.names(ALICE) is names
    assert selector.names(Subject("o")) is selector.names_anyone


def test_network_domains_are_written_as_dns_rules_write_them() -> None:
    rule = PolicyRule.from_spec(
        "network", "n", "allow", {"domains": ["Intranet.ACME.test.", ".b.test.", "*.c.test"]}
    )
    target = rule.target
    assert isinstance(target, NetworkTarget)
    assert target.domains == ("intranet.acme.test", ".b.test", "*.c.test")  # no final dot
    assert not target.any_address
    assert NetworkTarget().any_address
    same = PolicyRule.from_spec("network", "n", "allow", {"domains": ["a.test", "A.test."]})
    assert isinstance(same.target, NetworkTarget)
    assert same.target.domains == ("a.test",)
    for bad in ("a..test", "*", "exa mple.test", "*.*.test"):
        with pytest.raises(InvalidInput, match="rule n: domains: not a name"):
            PolicyRule.from_spec("network", "n", "allow", {"domains": [bad]})
