"""The DNS gateway's snapshot decides exactly as the policy's reference semantics does:
same action, same deciding rule, same reason codes, for random DNS-plane rules (stored
as the API stores them), checks, subjects, names and instants.

Left out on purpose, because the gateway alone defines them: `safe_search` (it decides
only for search engine names and lets the rest fall through), categories (the security
feeds are the gateway's) and allow-list-only fleets (`fleet:allow-list-only` blocks
where the policy's default allows); each has its own tests in test_dns_rules.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ztsim.dns.policy.identity import Requester, tags_of
from ztsim.dns.policy.lists import ListFormat, ParsedList, parse_list
from ztsim.dns.policy.liststores import compile_feeds, compile_list
from ztsim.dns.policy.rules import OrgPolicy, PolicyData, Rule
from ztsim.dns.policy.snapshot import Decision, PolicySnapshot
from ztsim.dns.store.repository import SPEC_FIELDS
from ztsim.policy import reference
from ztsim.policy.checks import PostureCheck
from ztsim.policy.conditions import Condition, is_sim_path, parse
from ztsim.policy.facts import SimSignals, Subject
from ztsim.policy.rules import Plane, PolicyRule
from ztsim.policy.targets import DnsQuery, list_source

from support.policy_strategies import ORG, checks, offsets, selector_specs, subjects, subset
from tests_clock import NOW

KEY = bytes(range(16))
# Entries as written (case and a final dot are the writer's), in all three forms.
DOMAINS = ("a.test", ".a.test", "*.a.test", "B.test.", ".c.test", "*.x.b.test", "test")
QNAMES: tuple[str, ...] = ("a.test", "x.a.test", "y.x.a.test", "b.test", "x.b.test", "ok.b.test")
QNAMES += ("c.test", "y.c.test", "d.test", "test", "Y.C.Test.")
QTYPES = (1, 28, 15, 65)
ANSWERS = ("192.0.2.1", "2001:db8::53", "198.51.100.7")
# One list per format, with the names each blocks out of QNAMES worked out by hand from
# the formats' documented scopes (an adblock `@@` exempts, `*.` in a domain list covers
# the name itself): the reference is not told by the gateway's own stores.
LIST_TEXT = {
    "ads": ("||b.test^\n@@||ok.b.test^\n", ListFormat.ADBLOCK),
    "kids": ("x.a.test\n*.c.test\n", ListFormat.DOMAINS),
    "hosts": ("0.0.0.0 d.test\n127.0.0.1 y.x.a.test\n", ListFormat.HOSTS),
}
LIST_CONTENTS = {
    list_source("ads"): frozenset({"b.test", "x.b.test"}),
    list_source("kids"): frozenset({"x.a.test", "c.test", "y.c.test"}),
    list_source("hosts"): frozenset({"d.test", "y.x.a.test"}),
}
PARSED: Mapping[str, ParsedList] = {
    name: parse_list(text, kind) for name, (text, kind) in LIST_TEXT.items()
}
# Compiled once: a snapshot per example then costs its rules only.
COMPILED = {name: compile_list(parsed, KEY) for name, parsed in PARSED.items()}
NO_FEEDS = compile_feeds({}, KEY)


def lists(source: str, qname: str) -> bool:
    return qname in LIST_CONTENTS.get(source, frozenset())


@st.composite
def dns_rules(draw: st.DrawFn) -> PolicyRule:
    spec = draw(selector_specs())
    spec |= {
        "domains": draw(subset(DOMAINS)),
        "lists": draw(subset(tuple(LIST_TEXT))),
        "qtypes": draw(st.lists(st.sampled_from(QTYPES), max_size=2, unique=True)),
    }
    action = draw(st.sampled_from(("allow", "block", "override")))
    if action == "override":
        spec["answer"] = draw(
            st.lists(st.sampled_from(ANSWERS), min_size=1, max_size=2, unique=True)
        )
    return PolicyRule.from_spec(Plane.DNS, "r", action, spec)


# Names are unique within an org's DNS plane, as the store keeps them.
rule_lists = st.lists(dns_rules(), max_size=12).map(
    lambda written: [replace(rule, name=f"r{i}") for i, rule in enumerate(written)]
)
queries = st.tuples(st.sampled_from(QNAMES), st.sampled_from(QTYPES)).map(lambda q: DnsQuery(*q))


def as_stored(rule: PolicyRule) -> Rule:
    """The gateway's rule read back from the flat spec, as the DNS store reads its rows."""
    spec: dict[str, Any] = {k: tuple(v) for k, v in rule.to_spec().items() if k in SPEC_FIELDS}
    return Rule(rule.name, rule.action, **spec)  # type: ignore[arg-type]


def conditions_of(stored: list[Rule]) -> tuple[Condition, ...]:
    """The org's DNS SIM conditions, each once in rule order (as the facts view reads them)."""
    found: dict[str, Condition] = {}
    for rule in stored:
        for text in rule.sim:
            condition = parse(text, allowed=is_sim_path)
            found.setdefault(condition.text, condition)
    return tuple(found.values())


def requester(
    subject: Subject,
    defined: Mapping[str, PostureCheck],
    conditions: tuple[Condition, ...],
    now: datetime,
) -> Requester:
    tags, _until = tags_of(subject, defined.values(), conditions, now)
    return Requester(
        subject.org_id,
        subject.identity_id,
        subject.group_ids,
        subject.fleet_ids,
        None if subject.sim_kind is None else subject.sim_kind.value,
        identity_kind=None if subject.identity_kind is None else subject.identity_kind.value,
        tags=tags,
    )


def snapshot_of(stored: list[Rule]) -> PolicySnapshot:
    policy = OrgPolicy(ORG, tuple(stored))
    PolicyData({ORG: policy}, PARSED)  # checks the rules' lists, as the gateway's load does
    return PolicySnapshot.assemble({ORG: policy}, COMPILED, NO_FEEDS)


def as_compared(decision: Decision) -> tuple[str, str | None, tuple[str, ...]]:
    return decision.action.value, decision.rule_id or None, decision.reasons


def assert_agree(decision: Decision, expected: reference.Decision) -> None:
    """Same action, rule and reasons; a block's EDE text names the reasons after the rule."""
    assert as_compared(decision) == (expected.action, expected.rule, expected.reasons)
    if decision.action.value == "block":
        states = expected.reasons[1:]
        text = f"blocked by rule {expected.rule}" + (f" ({', '.join(states)})" if states else "")
        assert decision.ede_text == text


def test_the_lists_block_what_the_reference_is_told() -> None:
    for name, compiled in COMPILED.items():
        for qname in QNAMES:
            query = DnsQuery(qname)
            assert compiled.blocks(query.qname) == lists(list_source(name), query.qname), qname


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rule_lists,
    checks(),
    st.lists(subjects(), min_size=1, max_size=4),
    st.lists(queries, min_size=1, max_size=6),
    offsets,
)
def test_the_gateway_decides_as_the_reference(
    written: list[PolicyRule],
    defined: dict[str, PostureCheck],
    people: list[Subject],
    asked: list[DnsQuery],
    shift: timedelta,
) -> None:
    now = NOW + shift
    stored = [as_stored(rule) for rule in written]
    snapshot = snapshot_of(stored)
    conditions = conditions_of(stored)
    for subject in people:
        who = requester(subject, defined, conditions, now)
        for query in asked:
            expected = reference.decide(written, defined, subject, Plane.DNS, query, now, lists)
            decision = snapshot.decide(who, query.qname, query.qtype)
            assert_agree(decision, expected)
            if expected.action == "override":
                rule = next(r for r in written if r.name == expected.rule)
                assert decision.addresses == tuple(rule.to_spec()["answer"])
            # Asked again: the gateway's per-requester caches change nothing.
            assert snapshot.decide(who, query.qname, query.qtype) == decision


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rule_lists,
    checks(),
    subjects(),
    st.lists(queries, min_size=1, max_size=4),
    offsets,
    st.integers(0, 3 * 86400),
)
def test_tags_stand_until_their_deadline(
    written: list[PolicyRule],
    defined: dict[str, PostureCheck],
    subject: Subject,
    asked: list[DnsQuery],
    shift: timedelta,
    wait: int,
) -> None:
    """A requester tagged at `now` is read again only at its tags' `until`: before that
    instant the reference must decide as those tags do (a swap's age, a cooling-off's end
    and a stale report all come due in time)."""
    now = NOW + shift
    stored = [as_stored(rule) for rule in written]
    snapshot, conditions = snapshot_of(stored), conditions_of(stored)
    who = requester(subject, defined, conditions, now)
    _tags, until = tags_of(subject, defined.values(), conditions, now)
    assert until is None or until > now
    # Where facts flip, if anywhere (random instants seldom fall between a flip and a
    # deadline set too late): each instant a fact changes at, and a random one.
    instants = {now + timedelta(seconds=wait), *_changes(subject, defined.values())}
    for later in sorted(t for t in instants if now <= t and (until is None or t < until)):
        for query in asked:
            expected = reference.decide(written, defined, subject, Plane.DNS, query, later, lists)
            assert_agree(snapshot.decide(who, query.qname, query.qtype), expected)


def _changes(subject: Subject, defined: Iterable[PostureCheck]) -> set[datetime]:
    """The instants at which the subject's facts read differently with no new facts: a
    cooling-off's end, a swap passing each duration the conditions use, a report expiring
    or passing a check's maximum age."""
    found: set[datetime] = set()
    signals, posture = subject.signals, subject.posture
    if signals.swap_recent_until is not None:
        found.add(signals.swap_recent_until)
    if signals.swapped_at is not None:
        found |= {signals.swapped_at + timedelta(minutes=m) for m in (30, 120, 720, 1440)}
    if posture is not None:
        found |= {posture.observed_at + check.max_age for check in defined}
        if posture.expires_at is not None:
            found.add(posture.expires_at)
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_lists, checks(), st.lists(subjects(), min_size=2, max_size=6), offsets)
def test_requesters_of_one_policy_class_get_one_answer(
    written: list[PolicyRule],
    defined: dict[str, PostureCheck],
    people: list[Subject],
    shift: timedelta,
) -> None:
    now = NOW + shift
    stored = [as_stored(rule) for rule in written]
    snapshot = snapshot_of(stored)
    conditions = conditions_of(stored)
    whos = [requester(s, defined, conditions, now) for s in people]
    for one in whos:
        for two in whos:
            if snapshot.policy_class(one) == snapshot.policy_class(two):
                for qname in QNAMES:
                    name = DnsQuery(qname).qname
                    for qtype in QTYPES:
                        assert snapshot.decide(one, name, qtype) == snapshot.decide(
                            two, name, qtype
                        )


# -- the disagreements the property found, pinned ----------------------------------------


def _one(written: list[PolicyRule], subject: Subject, qname: str) -> Decision:
    stored = [as_stored(rule) for rule in written]
    who = requester(subject, {}, conditions_of(stored), NOW)
    expected = reference.decide(written, {}, subject, Plane.DNS, DnsQuery(qname), NOW, lists)
    decision = snapshot_of(stored).decide(who, qname, 1)
    assert_agree(decision, expected)
    return decision


def test_a_check_the_org_does_not_have_holds_neither_way() -> None:
    for written in ("gone", "!gone"):
        rule = PolicyRule.from_spec("dns", "r", "block", {"posture": [written]})
        decision = _one([rule], Subject(ORG, "alice"), "a.test")
        assert as_compared(decision) == ("allow", None, ("default:allow", "posture:gone:missing"))


def test_a_decision_names_what_kept_earlier_rules_from_applying() -> None:
    written = [
        PolicyRule.from_spec("dns", "swap", "allow", {"sim": ["sim.swap_age < 24h"]}),
        PolicyRule.from_spec("dns", "mdm", "allow", {"posture": ["managed"]}),
        PolicyRule.from_spec("dns", "rest", "block", {"domains": [".a.test"]}),
    ]
    states = ("sim:swap-recent", "posture:managed:missing")
    blocked = _one(written, Subject(ORG, "alice"), "x.a.test")
    assert blocked.reasons == ("rule:rest", *states)
    assert blocked.ede_text == "blocked by rule rest (sim:swap-recent, posture:managed:missing)"
    assert _one(written, Subject(ORG, "alice"), "b.test").reasons == ("default:allow", *states)


def test_a_cooling_off_blocks_with_its_reason_until_it_ends() -> None:
    written = [PolicyRule.from_spec("dns", "bank", "block", {"sim": ["sim.swap_recent"]})]
    ends = NOW + timedelta(hours=12)
    cooling = Subject(ORG, "alice", signals=SimSignals(swapped_at=NOW, swap_recent_until=ends))
    blocked = _one(written, cooling, "a.test")
    assert blocked.ede_text == "blocked by rule bank (sim:swap-recent)"
    conditions = conditions_of([as_stored(r) for r in written])
    assert tags_of(cooling, (), conditions, NOW) == (frozenset({"sim:sim.swap_recent"}), ends)
    assert tags_of(cooling, (), conditions, ends) == (frozenset(), None)
