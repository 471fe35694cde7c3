"""The flattened elements against the policy's reference evaluator, and their shape."""

from __future__ import annotations

import ipaddress
import time
from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.net.ruleset import Element, Flattened, flatten
from ztsim.policy.rules import PolicyRule

from support.net_rules import by_reference, number, probes, rule, rules


def assert_disjoint(elements: tuple[Element, ...]) -> None:
    for a, b in combinations(elements, 2):
        overlap = all(
            x[0] <= y[1] and y[0] <= x[1]
            for x, y in ((a.address, b.address), (a.protocol, b.protocol), (a.port, b.port))
        )
        assert not overlap, (a, b)


def test_no_rules_is_no_elements_and_everything_is_denied() -> None:
    flat = flatten([])
    assert len(flat) == 0
    assert flat.verdict("10.0.0.1", 6, 80) == "drop"


def test_a_deny_punches_a_hole_in_a_wider_allow() -> None:
    flat = flatten(
        [
            rule("hole", "deny", cidrs=["10.1.0.5/32"], protocol="tcp", ports=["80"]),
            rule("site", "allow", cidrs=["10.1.0.0/24"], protocol="tcp", ports=["80", "443"]),
        ]
    )
    assert flat.verdict("10.1.0.5", 6, 80) == "drop"
    assert flat.verdict("10.1.0.5", 6, 443) == "accept"
    assert flat.verdict("10.1.0.4", 6, 80) == "accept"
    assert flat.verdict("10.1.0.6", 6, 80) == "accept"
    assert flat.verdict("10.1.0.6", 17, 80) == "drop"
    assert flat.verdict("10.1.1.0", 6, 80) == "drop"
    assert all(e.verdict == "accept" for e in flat.v4)
    assert not flat.v6
    assert_disjoint(flat.v4)


def test_a_later_rule_is_shadowed_by_an_earlier_one() -> None:
    flat = flatten(
        [
            rule("all", "allow", cidrs=["10.2.0.0/16"]),
            rule("never", "deny", cidrs=["10.2.3.0/24"], protocol="udp", ports=["53"]),
        ]
    )
    # One element: the whole /16, every protocol and port.
    assert [e.to_json() for e in flat.v4] == [
        [
            {
                "concat": [
                    {"prefix": {"addr": "10.2.0.0", "len": 16}},
                    {"range": [0, 255]},
                    {"range": [0, 65535]},
                ]
            },
            {"accept": None},
        ]
    ]


def test_any_protocol_covers_protocols_the_rules_never_name() -> None:
    flat = flatten([rule("gre", "allow", cidrs=["192.0.2.0/24"])])
    assert flat.verdict("192.0.2.9", 47, 0) == "accept"  # GRE
    tcp_only = flatten([rule("t", "allow", cidrs=["192.0.2.0/24"], protocol="tcp")])
    assert tcp_only.verdict("192.0.2.9", 47, 0) == "drop"


def test_icmp_is_icmpv6_for_v6_and_no_cidr_means_both_families() -> None:
    flat = flatten([rule("ping", "allow", protocol="icmp")])
    assert flat.verdict("2001:db8::1", 58, 0) == "accept"
    assert flat.verdict("2001:db8::1", 1, 0) == "drop"
    assert flat.verdict("198.51.100.1", 1, 1234) == "accept"
    assert flat.verdict("198.51.100.1", 58, 0) == "drop"


def test_rules_for_one_family_leave_the_other_empty() -> None:
    flat = flatten([rule("v6", "allow", cidrs=["fd00::/64"], protocol="tcp", ports=["22"])])
    assert not flat.v4
    assert len(flat.v6) == 1
    assert flat.v6[0].to_json()[0]["concat"] == [{"prefix": {"addr": "fd00::", "len": 64}}, 6, 22]


def test_adjacent_equal_verdicts_merge() -> None:
    flat = flatten(
        [
            rule("a", "allow", cidrs=["10.0.0.0/25"], protocol="tcp", ports=["80-90"]),
            rule("b", "allow", cidrs=["10.0.0.128/25"], protocol="tcp", ports=["80-85", "86-90"]),
        ]
    )
    assert len(flat.v4) == 1
    assert flat.v4[0].address == (
        int(ipaddress.IPv4Address("10.0.0.0")),
        int(ipaddress.IPv4Address("10.0.0.255")),
    )


def test_other_plane_rules_are_ignored() -> None:
    dns = PolicyRule.from_spec("dns", "d", "block", {"domains": ["example.com"]})
    assert len(flatten([dns])) == 0


def test_a_thousand_rules_stay_small_and_fast() -> None:
    rules = [
        rule(
            f"r{i}",
            "deny" if i % 10 == 0 else "allow",
            cidrs=[f"10.{i // 200}.{i % 200}.0/24", "10.99.0.0/16"]
            if i % 50 == 0
            else [f"10.{i // 200}.{i % 200}.0/24"],
            protocol=("tcp", "udp")[i % 2],
            ports=[str(1000 + i % 37), f"{2000 + i}-{2100 + i}"],
        )
        for i in range(1_000)
    ]
    started = time.perf_counter()
    flat = flatten(rules)
    took = time.perf_counter() - started
    print(f"1,000 rules: {len(flat)} elements in {took * 1000:.0f} ms")
    assert took < 5
    assert len(flat) <= 3 * len(rules)
    assert flat.verdict("10.0.1.7", 17, 1001) == "accept"
    assert flat.verdict("10.0.10.7", 6, 1010) == "drop"  # rule 10 is a deny


# -- Hypothesis: the elements say what the reference evaluator says --------------------


@settings(max_examples=300, deadline=None)
@given(rules(), st.data())
def test_elements_agree_with_the_reference(
    drawn: tuple[list[PolicyRule], list[PolicyRule]], data: st.DataObject
) -> None:
    everyone, alices = drawn
    flat: Flattened = flatten(alices)
    assert_disjoint(flat.v4)
    assert_disjoint(flat.v6)
    for address, protocol, port in data.draw(probes(everyone)):
        expected = by_reference(everyone, address, protocol, port)
        assert flat.verdict(address, number(protocol, address), port) == expected, (
            address,
            protocol,
            port,
        )
