"""The compiled policy decides exactly as the reference does, reasons included, for random
rules, subjects, targets and instants; its classes are interned and their `until` honest."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ztsim.errors import InvalidInput, NotFound
from ztsim.policy import reference
from ztsim.policy.checks import PostureCheck
from ztsim.policy.compile import CompiledPolicy
from ztsim.policy.facts import Posture, SimSignals, Subject
from ztsim.policy.rules import ACTIONS, Plane, PolicyRule
from ztsim.policy.targets import AttachRequest, DnsQuery, Flow, Query

from support.policy_strategies import ORG, checks, offsets, selector_specs, subjects, subset
from tests_clock import NOW

DOMAINS = ("a.test", ".a.test", "*.a.test", "b.test", ".c.test")
QNAMES = ("a.test", "x.a.test", "b.test", "c.test", "y.c.test", "d.test")
CIDRS = ("10.0.0.0/8", "10.1.0.0/16", "192.0.2.0/24", "2001:db8::/32")
ADDRESSES = ("10.1.2.3", "10.2.0.1", "192.0.2.9", "203.0.113.1", "2001:db8::1")
APNS = ("internet", "iot.corp", "mms")
LIST_CONTENTS = {
    ("list:ads", "b.test"),
    ("list:ads", "d.test"),
    ("list:kids", "x.a.test"),
    ("category:malware", "c.test"),
}


def lists(source: str, qname: str) -> bool:
    return (source, qname) in LIST_CONTENTS


@st.composite
def rules(draw: st.DrawFn) -> PolicyRule:
    plane = draw(st.sampled_from(list(Plane)))
    spec = draw(selector_specs())
    if plane is Plane.DNS:
        spec |= {
            "domains": draw(subset(DOMAINS)),
            "lists": draw(subset(("ads", "kids"), 1)),
            "categories": draw(subset(("malware",), 1)),
            "qtypes": draw(st.lists(st.sampled_from((1, 28, 15)), max_size=2, unique=True)),
        }
    elif plane is Plane.NETWORK:
        protocol = draw(st.sampled_from(("any", "tcp", "udp", "icmp")))
        spec |= {"cidrs": draw(subset(CIDRS)), "protocol": protocol}
        if draw(st.booleans()):
            spec["domains"] = draw(subset(DOMAINS, 1))
        if protocol in ("tcp", "udp"):
            spec["ports"] = draw(subset(("443", "22", "8000-8100")))
    else:
        spec["apns"] = draw(subset(APNS))
    name = f"r{draw(st.integers(0, 99))}"  # repeats allowed: names are not keys
    action = draw(st.sampled_from(sorted(ACTIONS[plane])))
    return PolicyRule.from_spec(plane, name, action, spec)


@st.composite
def targets(draw: st.DrawFn) -> tuple[Plane, Query]:
    plane = draw(st.sampled_from(list(Plane)))
    if plane is Plane.DNS:
        return plane, DnsQuery(draw(st.sampled_from(QNAMES)), draw(st.sampled_from((1, 28, 15))))
    if plane is Plane.NETWORK:
        protocol = draw(st.sampled_from(("tcp", "udp", "icmp")))
        port = None if protocol == "icmp" else draw(st.sampled_from((None, 22, 443, 8050, 9999)))
        names = draw(st.frozensets(st.sampled_from(QNAMES), max_size=2))
        return plane, Flow(draw(st.sampled_from(ADDRESSES)), protocol, port, names)
    return plane, AttachRequest(draw(st.sampled_from((*APNS, "ims"))))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(rules(), max_size=12),
    checks(),
    st.lists(subjects(), min_size=1, max_size=4),
    st.lists(targets(), min_size=1, max_size=4),
    offsets,
)
def test_compiled_decisions_equal_the_reference(
    written: list[PolicyRule],
    defined: dict[str, PostureCheck],
    people: list[Subject],
    asked: list[tuple[Plane, Query]],
    shift: timedelta,
) -> None:
    now = NOW + shift
    policy = CompiledPolicy(ORG, written, defined)
    for who in people:
        classified = policy.classify(who, now)
        assert policy.classify(who, now).class_id == classified.class_id  # interned
        for plane, target in asked:
            expected = reference.decide(written, defined, who, plane, target, now, lists)
            assert policy.decide(classified.class_id, plane, target, lists) == expected
            assert policy.decide(classified.class_id, plane, target, lists) == expected  # cached
        # `until` is honest: nothing the class depends on changes before it.
        if classified.until is None:
            later = now + timedelta(days=400)
        else:
            assert classified.until > now
            later = classified.until - timedelta(microseconds=1)
        assert policy.classify(who, later).class_id == classified.class_id


@settings(max_examples=100, deadline=None)
@given(st.lists(rules(), max_size=10), checks(), st.lists(subjects(), max_size=8), offsets)
def test_classify_many_is_classify_for_each(
    written: list[PolicyRule],
    defined: dict[str, PostureCheck],
    people: list[Subject],
    shift: timedelta,
) -> None:
    policy = CompiledPolicy(ORG, written, defined)
    keyed = dict(enumerate(people))
    many = policy.classify_many(keyed, NOW + shift)
    assert many == {k: policy.classify(s, NOW + shift).class_id for k, s in keyed.items()}
    assert policy.class_count == len(set(many.values()))
    # Two subjects share a class only if every decision comes out the same for both.
    asked: list[tuple[Plane, Query]] = [
        (Plane.DNS, DnsQuery("a.test")),
        (Plane.ATTACH, AttachRequest("mms")),
    ]
    for i, a in keyed.items():
        for j, b in keyed.items():
            if many[i] == many[j]:
                for plane, target in asked:
                    one = reference.decide(written, defined, a, plane, target, NOW + shift, lists)
                    two = reference.decide(written, defined, b, plane, target, NOW + shift, lists)
                    assert one == two


def _rule(plane: str, name: str, action: str, **spec: Any) -> PolicyRule:
    return PolicyRule.from_spec(plane, name, action, spec)


MANAGED = {"managed": PostureCheck("managed", "device.managed", timedelta(hours=4))}


def test_classes_group_alike_subjects_and_stay_stable() -> None:
    policy = CompiledPolicy(
        ORG,
        [
            _rule("network", "staff-web", "allow", groups=["staff"], posture=["managed"]),
            _rule("network", "bob", "deny", identities=["bob"]),
        ],
        MANAGED,
    )
    report = Posture({"managed": True}, NOW - timedelta(hours=1))
    alice = Subject(ORG, "alice", group_ids=frozenset({"staff"}), posture=report)
    carol = Subject(ORG, "carol", group_ids=frozenset({"staff", "x"}), posture=report)
    bob = Subject(ORG, "bob", group_ids=frozenset({"staff"}), posture=report)
    first = policy.classify(alice, NOW)
    assert policy.classify(carol, NOW).class_id == first.class_id
    assert first.until == NOW + timedelta(hours=3)  # when the report goes stale
    assert policy.classify(bob, NOW).class_id != first.class_id
    stale = policy.classify(alice, NOW + timedelta(hours=3))
    assert stale.class_id != first.class_id
    assert stale.until is None
    assert policy.classify(alice, NOW).class_id == first.class_id  # ids live as long as the object
    assert policy.class_count == 3
    assert policy.decide(stale.class_id, "network", Flow("10.0.0.1")).reasons == (
        "default:deny",
        "posture:managed:stale",
    )


def test_a_swap_ages_out_of_its_class() -> None:
    policy = CompiledPolicy(ORG, [_rule("attach", "swap", "deny", sim=["sim.swap_age < 24h"])], {})
    who = Subject(ORG, "alice", signals=SimSignals(swapped_at=NOW - timedelta(hours=1)))
    now = policy.classify(who, NOW)
    assert now.until == NOW + timedelta(hours=23)
    assert policy.decide(now.class_id, "attach", AttachRequest("internet")).action == "deny"
    then = policy.classify(who, now.until)
    assert policy.decide(then.class_id, "attach", AttachRequest("internet")).action == "allow"


def test_a_cooling_off_ends_out_of_its_class() -> None:
    rule = _rule("attach", "cooling", "deny", sim=["sim.swap_recent", "sim.swap_age < 1d"])
    policy = CompiledPolicy(ORG, [rule], {})
    ends = NOW + timedelta(hours=2)
    signals = SimSignals(swapped_at=NOW - timedelta(hours=1), swap_recent_until=ends)
    who = Subject(ORG, "alice", signals=signals)
    now = policy.classify(who, NOW)
    assert now.until == ends  # before the age passes a day
    denied = policy.decide(now.class_id, "attach", AttachRequest("internet"))
    assert denied.reasons == ("rule:cooling", "sim:swap-recent")  # one code for both
    then = policy.classify(who, ends)
    assert then.class_id != now.class_id
    assert then.until == NOW + timedelta(hours=23)  # the age is still timed
    allowed = policy.decide(then.class_id, "attach", AttachRequest("internet"))
    assert allowed.reasons == ("default:allow", "sim:swap-recent")


def test_a_bounded_cache_still_decides_right() -> None:
    written = [_rule("dns", f"r{i}", "block", domains=[f"n{i}.test"]) for i in range(5)]
    policy = CompiledPolicy(ORG, written, {}, cache_size=2)
    uncached = CompiledPolicy(ORG, written, {}, cache_size=0)
    who = Subject(ORG, "alice")
    c, u = policy.classify(who, NOW).class_id, uncached.classify(who, NOW).class_id
    for _ in range(2):
        for i in range(7):
            query = DnsQuery(f"n{i}.test")
            assert policy.decide(c, "dns", query) == uncached.decide(u, "dns", query)
            expected = f"r{i}" if i < 5 else None
            assert policy.decide(c, "dns", query).rule == expected


def test_refusals() -> None:
    with pytest.raises(InvalidInput, match="belongs to an org"):
        CompiledPolicy("", [], {})
    with pytest.raises(InvalidInput, match="filed under 'other'"):
        CompiledPolicy(ORG, [], {"other": MANAGED["managed"]})
    policy = CompiledPolicy(ORG, [], MANAGED)
    with pytest.raises(InvalidInput, match="another org"):
        policy.classify(Subject("p", "alice"), NOW)
    with pytest.raises(NotFound, match="policy class 0"):
        policy.decide(0, "dns", DnsQuery("a.test"))
    with pytest.raises(ValueError, match="email"):
        policy.decide(0, "email", DnsQuery("a.test"))


def test_a_subject_with_no_rules_naming_it_gets_the_defaults() -> None:
    policy = CompiledPolicy(ORG, [_rule("network", "bob", "allow", identities=["bob"])], {})
    nobody = policy.classify(Subject(ORG), NOW)
    assert nobody.until is None
    decision = policy.decide(nobody.class_id, "network", Flow("10.0.0.1", "udp", 53))
    assert (decision.action, decision.rule, decision.reasons) == ("deny", None, ("default:deny",))
