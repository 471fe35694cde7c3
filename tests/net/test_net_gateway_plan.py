"""The gateway's plan, without a kernel: a class's chain (its applying rules, flattened)
gives every flow the reference evaluator's verdict; chains are named by content; a
change plans only what differs, cuts the addresses that lost or changed their class,
and deletes a chain with its last subject."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ztsim.net.gateway_plan import (
    ChainSpec,
    GatewayTable,
    chain_name,
    class_tag,
    generation_of,
)
from ztsim.net.identity_option import ClassTag
from ztsim.net.nft_names import Command, class_chain
from ztsim.net.ruleset import flatten
from ztsim.policy import reference
from ztsim.policy.checks import PostureCheck
from ztsim.policy.compile import CompiledPolicy
from ztsim.policy.facts import Subject
from ztsim.policy.rules import Plane, PolicyRule
from ztsim.policy.targets import Flow

from support.policy_strategies import ORG, checks, offsets, selector_specs, subjects, subset
from tests_clock import NOW

CIDRS = ("10.0.0.0/8", "10.1.0.0/16", "192.0.2.0/24", "2001:db8::/32")
FLOWS = [
    Flow(address, protocol, port)
    for address in ("10.1.2.3", "10.2.0.1", "192.0.2.9", "203.0.113.1", "2001:db8::1")
    for protocol, port in (("tcp", 22), ("tcp", 443), ("udp", 8050), ("icmp", None))
]
PROTO = {"tcp": 6, "udp": 17}


@st.composite
def network_rules(draw: st.DrawFn) -> PolicyRule:
    spec = draw(selector_specs())
    protocol = draw(st.sampled_from(("any", "tcp", "udp", "icmp")))
    spec |= {"cidrs": draw(subset(CIDRS)), "protocol": protocol}
    if protocol in ("tcp", "udp"):
        spec["ports"] = draw(subset(("443", "22", "8000-8100")))
    plane = draw(st.sampled_from(("network", "network", "dns")))
    if plane == "dns":  # rules of another plane never reach a network chain
        spec = {k: v for k, v in spec.items() if k not in ("cidrs", "protocol", "ports")}
        return PolicyRule.from_spec("dns", f"d{draw(st.integers(0, 9))}", "block", spec)
    action = draw(st.sampled_from(("allow", "deny")))
    return PolicyRule.from_spec("network", f"r{draw(st.integers(0, 99))}", action, spec)


def _number(flow: Flow) -> int:
    if flow.protocol == "icmp":
        return 1 if flow.ip.version == 4 else 58
    return PROTO[flow.protocol]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(network_rules(), max_size=10),
    checks(),
    st.lists(subjects(), min_size=1, max_size=4),
    offsets,
)
def test_a_class_chain_decides_as_the_reference(
    written: list[PolicyRule],
    defined: dict[str, PostureCheck],
    people: list[Subject],
    shift: timedelta,
) -> None:
    now = NOW + shift
    policy = CompiledPolicy(ORG, written, defined)
    for who in people:
        class_id = policy.classify(who, now).class_id
        applying = policy.applying_rules(class_id, "network")
        assert all(r.plane is Plane.NETWORK for r in applying)
        assert [r for r in written if r in applying] == list(applying)  # evaluation order
        flat = flatten(applying)
        for flow in FLOWS:
            expected = reference.decide(written, defined, who, "network", flow, now)
            verdict = flat.verdict(flow.address, _number(flow), flow.port or 1)
            assert verdict == {"allow": "accept", "deny": "drop"}[expected.action], flow


def _rule(name: str, action: str = "allow", **spec: Any) -> PolicyRule:
    return PolicyRule.from_spec("network", name, action, spec)


WEB = _rule("web", cidrs=["10.9.0.0/16"], protocol="tcp", ports=["443"])
SSH = _rule("ssh", cidrs=["10.9.0.0/16"], protocol="tcp", ports=["22"])
PING = _rule("ping", cidrs=["10.9.0.0/16"], protocol="icmp")


def test_chains_are_named_by_their_content() -> None:
    assert chain_name([WEB, SSH]) == chain_name([WEB, SSH])
    assert chain_name([WEB, SSH]) != chain_name([SSH, WEB])  # order decides
    assert chain_name([WEB]) != chain_name([_rule("web", "deny", cidrs=["10.9.0.0/16"])])
    assert chain_name([WEB]) != chain_name(
        [_rule("web2", cidrs=["10.9.0.0/16"], protocol="tcp", ports=["443"])]
    )
    name = chain_name([])
    assert name.startswith("n_")
    assert len(name) == 14
    assert class_chain(name) == f"class_{name}"  # a name nft_documents takes
    assert ChainSpec.of([WEB]).name == chain_name([WEB])


def test_the_class_tag_carries_a_32_bit_generation() -> None:
    assert generation_of(2**32 + 5) == 5
    assert class_tag(7, 3) == ClassTag(7, 3)


def verbs(commands: tuple[Command, ...]) -> list[tuple[str, str]]:
    return [(verb, next(iter(body))) for command in commands for verb, body in command.items()]


def test_a_change_plans_only_what_differs_and_cuts_who_lost_or_moved() -> None:
    table = GatewayTable(reject=True)
    staff, guests = ChainSpec.of([WEB, SSH]), ChainSpec.of([PING])
    whole = table.plan_whole(
        {"10.45.0.2": staff, "10.45.0.3": staff, "10.45.0.4": guests}, ["10.9.0.0/16"]
    )
    assert whole.whole
    assert whole.cut == ()
    table.commit(whole)
    assert table.uses == {staff.name: 2, guests.name: 1}
    assert table.plan({"10.45.0.2": staff}).commands == ()  # already so
    assert not table.plan({}, sites=["10.9.0.0/16"])  # the same sites: nothing to do

    # One subject moves to the guests' chain: no chain is created or deleted.
    move = table.plan({"10.45.0.2": guests})
    assert verbs(move.commands) == [("delete", "element"), ("add", "element")]
    assert move.cut == ("10.45.0.2",)
    table.commit(move)
    # The last staff subject leaves: the chain is deleted in the same batch, after it.
    gone = table.plan({"10.45.0.3": None})
    assert verbs(gone.commands)[0] == ("delete", "element")
    assert ("delete", "chain") in verbs(gone.commands)
    assert gone.cut == ("10.45.0.3",)
    table.commit(gone)
    assert set(table.flattened) == {guests.name}
    # A new class: its chain is created before the subject jumps to it; new subjects
    # have no flows to cut.
    edited = ChainSpec.of([WEB])
    new = table.plan({"10.45.0.5": edited}, sites=["10.9.0.0/16", "10.8.0.0/16"])
    order = verbs(new.commands)
    assert order.index(("add", "chain")) < order.index(("add", "element"))
    assert ("flush", "set") in order
    assert new.cut == ()
    table.commit(new)
    assert [str(p) for p in table.sites] == ["10.8.0.0/16", "10.9.0.0/16"]


def test_a_whole_plan_cuts_what_the_previous_table_held_elsewhere() -> None:
    table = GatewayTable()
    staff = ChainSpec.of([WEB])
    previous = {"10.45.0.2": staff.name, "10.45.0.3": "n_000000000000", "10.45.0.4": staff.name}
    plan = table.plan_whole({"10.45.0.2": staff, "10.45.0.3": staff}, [], previous)
    assert sorted(plan.cut) == ["10.45.0.3", "10.45.0.4"]


def test_equal_rule_lists_share_a_chain_across_orgs() -> None:
    one = CompiledPolicy("org1", [WEB], {})
    two = CompiledPolicy("org2", [WEB], {})
    a = one.classify(Subject("org1", "x"), NOW).class_id
    b = two.classify(Subject("org2", "y"), NOW).class_id
    specs = {
        "10.45.0.2": ChainSpec.of(one.applying_rules(a, "network")),
        "10.46.0.2": ChainSpec.of(two.applying_rules(b, "network")),
    }
    table = GatewayTable()
    plan = table.plan_whole(specs, [])
    table.commit(plan)
    assert len(table.flattened) == 1
    flattened = {"count": 0}

    def counting(rules: Any) -> Any:
        flattened["count"] += 1
        return flatten(rules)

    lazy = GatewayTable(flattener=counting)
    lazy.commit(lazy.plan_whole(specs, []))
    assert flattened["count"] == 1  # flattened once for both
