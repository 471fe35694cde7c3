"""Rules as data compiled to a snapshot: selectors, order, allow-list-only fleets, lists."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ztsim.dns.policy.feeds import sample_feeds
from ztsim.dns.policy.identity import Requester, shared, tags_of
from ztsim.dns.policy.lists import ListFormat, parse_list
from ztsim.dns.policy.rules import Action, Category, OrgPolicy, OrgSettings, PolicyData, Rule
from ztsim.dns.policy.snapshot import ALLOW_LIST_ONLY, PolicySnapshot
from ztsim.dns.wire.constants import EdeCode, RRType
from ztsim.errors import InvalidInput
from ztsim.policy.checks import PostureCheck
from ztsim.policy.conditions import is_sim_path, parse
from ztsim.policy.facts import IdentityKind, Posture, SimSignals, Subject

KEY = bytes(range(16))
WHO = Requester("o", "alice", frozenset({"staff"}), frozenset({"trucks"}), "esim", "dev")


def _snapshot(
    *rules: Rule, lists: dict[str, str] | None = None, **settings: object
) -> PolicySnapshot:
    parsed = {name: parse_list(text) for name, text in (lists or {}).items()}
    org = OrgPolicy("o", rules, OrgSettings(**settings))  # type: ignore[arg-type]
    return PolicySnapshot(PolicyData({"o": org}, parsed, sample_feeds()), KEY)


def _action(
    snapshot: PolicySnapshot, name: str, qtype: int = RRType.A, who: Requester = WHO
) -> str:
    decision = snapshot.decide(who, name, qtype)
    return f"{decision.action.value}:{decision.rule_id}"


def test_domain_selectors_exact_suffix_wildcard() -> None:
    snap = _snapshot(
        Rule("exact", Action.BLOCK, domains=("a.test",)),
        Rule("suffix", Action.BLOCK, domains=(".b.test",)),
        Rule("wild", Action.BLOCK, domains=("*.c.test",)),
    )
    assert _action(snap, "a.test") == "block:exact"
    assert _action(snap, "x.a.test") == "allow:"
    assert _action(snap, "b.test") == "block:suffix"
    assert _action(snap, "x.y.b.test") == "block:suffix"
    assert _action(snap, "c.test") == "allow:"
    assert _action(snap, "x.c.test") == "block:wild"


def test_first_matching_rule_wins_and_qtype_selector() -> None:
    snap = _snapshot(
        Rule("allow-mx", Action.ALLOW, domains=(".d.test",), qtypes=(RRType.MX,)),
        Rule("block", Action.BLOCK, domains=(".d.test",)),
    )
    assert _action(snap, "d.test", RRType.MX) == "allow:allow-mx"
    assert _action(snap, "d.test", RRType.A) == "block:block"


@pytest.mark.parametrize(
    ("field", "value", "applies"),
    [
        ("identities", ("alice",), True),
        ("identities", ("bob",), False),
        ("groups", ("staff",), True),
        ("fleets", ("trucks",), True),
        ("fleets", ("cars",), False),
        ("sim_kinds", ("esim",), True),
        ("sim_kinds", ("physical",), False),
    ],
)
def test_subject_selectors(field: str, value: tuple[str, ...], applies: bool) -> None:
    snap = _snapshot(Rule("r", Action.BLOCK, domains=("e.test",), **{field: value}))  # type: ignore[arg-type]
    assert _action(snap, "e.test") == ("block:r" if applies else "allow:")


def test_allow_list_only_fleet() -> None:
    snap = _snapshot(
        Rule("ok", Action.ALLOW, domains=(".work.test",), fleets=("trucks",)),
        allow_list_only_fleets=frozenset({"trucks"}),
    )
    assert _action(snap, "api.work.test") == "allow:ok"
    decision = snap.decide(WHO, "elsewhere.test", RRType.A)
    assert (decision.action, decision.rule_id, decision.ede_code) == (
        Action.BLOCK,
        ALLOW_LIST_ONLY,
        EdeCode.FILTERED,
    )
    outsider = Requester("o", "bob")
    assert _action(snap, "elsewhere.test", who=outsider) == "allow:"


def test_adblock_exceptions_and_categories() -> None:
    snap = _snapshot(
        Rule("ads", Action.BLOCK, lists=("ads",)),
        Rule("sec", Action.BLOCK, categories=(Category.MALWARE,)),
        lists={"ads": "||ads.test^\n@@||good.ads.test^\n"},
    )
    assert _action(snap, "x.ads.test") == "block:ads"
    assert _action(snap, "x.good.ads.test") == "allow:"
    assert _action(snap, "payload.malware.example") == "block:sec"
    assert _action(snap, "login-verify.phish.example") == "allow:"  # category not selected


def test_list_with_bad_lines_loads_every_good_line() -> None:
    good = [f"host{i}.bad-lines.test" for i in range(50)]
    text = "\n".join(
        line for i, name in enumerate(good) for line in (name, f"bad name {i}!", "a..b")
    )
    parsed = parse_list(text, ListFormat.DOMAINS)
    assert parsed.bad_lines == 100
    assert parsed.good_lines == 50
    snap = _snapshot(Rule("l", Action.BLOCK, lists=("l",)), lists={"l": text})
    assert all(_action(snap, name) == "block:l" for name in good)


def test_safe_search_only_for_engines() -> None:
    snap = _snapshot(Rule("safe", Action.SAFE_SEARCH), Rule("all", Action.BLOCK))
    decision = snap.decide(WHO, "www.bing.com", RRType.A)
    assert (decision.action, decision.cname) == (Action.OVERRIDE, "strict.bing.com")
    assert _action(snap, "example.test") == "block:all"


def test_invalid_rules_rejected() -> None:
    with pytest.raises(InvalidInput):
        Rule("o", Action.OVERRIDE)
    with pytest.raises(InvalidInput):
        Rule("b", Action.BLOCK, answer=("192.0.2.1",))
    with pytest.raises(InvalidInput):
        Rule("d", Action.BLOCK, domains=("bad name",))
    with pytest.raises(InvalidInput):
        OrgPolicy("o", (Rule("x", Action.BLOCK), Rule("x", Action.ALLOW)))
    with pytest.raises(InvalidInput):
        PolicyData({"o": OrgPolicy("o", (Rule("x", Action.BLOCK, lists=("missing",)),))})
    with pytest.raises(InvalidInput):
        OrgSettings(block_page_ipv4="2001:db8::1")


# -- requirements: posture checks and SIM conditions, read from the requester's tags -------

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
MODERN = PostureCheck("managed-modern", 'device.managed and device.os_version >= "17.0"')
SWAPPED = parse("sim.swap_age < 24h", allowed=is_sim_path)


def _tagged(**facts: object) -> tuple[Requester, datetime | None]:
    """WHO with the tags `tags_of` gives it for `facts` (a Subject's fields)."""
    subject = Subject("o", "alice", IdentityKind.USER, **facts)  # type: ignore[arg-type]
    tags, until = tags_of(subject, [MODERN], [SWAPPED], NOW)
    return replace(WHO, identity_kind="user", tags=tags), until


def _posture(os_version: str, age: timedelta = timedelta(0)) -> Posture:
    return Posture({"managed": True, "os_version": os_version}, NOW - age)


def test_tags_say_each_checks_state_and_the_conditions_that_hold() -> None:
    who, until = _tagged(posture=_posture("17.1", timedelta(hours=1)))
    assert who.tags == {"posture:managed-modern:passed"}
    assert until == NOW + timedelta(hours=23)  # when the report goes stale
    who, _ = _tagged(posture=_posture("16.0"))
    assert who.tags == {"posture:managed-modern:failed"}
    who, until = _tagged(posture=_posture("17.1", timedelta(hours=25)))
    assert who.tags == {"posture:managed-modern:stale"}
    assert until is None  # only new facts change it
    swapped = SimSignals(swapped_at=NOW - timedelta(hours=1))
    who, until = _tagged(signals=swapped)
    assert who.tags == {"posture:managed-modern:missing", "sim:sim.swap_age < 24h"}
    assert until == NOW + timedelta(hours=23)  # when the swap ages past 24 h
    assert hash(who) == hash(replace(who))  # still hashable, on its values


@pytest.mark.parametrize(
    ("facts", "decision"),
    [
        ({"posture": _posture("17.1")}, "override:pin"),
        ({"posture": _posture("16.0")}, "block:no-finance"),
        ({"posture": _posture("17.1", timedelta(days=2))}, "block:no-finance"),  # stale
        ({}, "block:no-finance"),  # no report: fails closed
    ],
)
def test_a_rule_requiring_a_check_not_to_pass(facts: dict[str, object], decision: str) -> None:
    snap = _snapshot(
        Rule("no-finance", Action.BLOCK, domains=(".finance.test",), posture=("!managed-modern",)),
        Rule("pin", Action.OVERRIDE, domains=(".finance.test",), answer=("192.0.2.1",)),
    )
    who, _ = _tagged(**facts)
    assert _action(snap, "www.finance.test", who=who) == decision


def test_reasons_and_the_ede_text_name_the_requirement_states() -> None:
    snap = _snapshot(
        Rule("no-finance", Action.BLOCK, domains=(".finance.test",), posture=("!managed-modern",)),
        Rule("swap", Action.BLOCK, domains=(".bank.test",), sim=("sim.swap_age < 24h",)),
        Rule("mdm-only", Action.ALLOW, domains=(".mdm.test",), posture=("managed-modern", "!nope")),
        Rule("rest", Action.BLOCK, domains=(".mdm.test",)),
    )
    failed, _ = _tagged(posture=_posture("16.0"), signals=SimSignals(swapped_at=NOW))
    decision = snap.decide(failed, "www.finance.test", RRType.A)
    assert decision.ede_text == "blocked by rule no-finance (posture:managed-modern:failed)"
    assert decision.reasons == ("rule:no-finance", "posture:managed-modern:failed")
    decision = snap.decide(failed, "login.bank.test", RRType.A)
    assert decision.ede_text == "blocked by rule swap (sim:swap-recent)"
    assert decision.reasons == ("rule:swap", "sim:swap-recent")
    compliant, _ = _tagged(posture=_posture("17.0"))
    # A check the org does not have holds neither way: `!nope` keeps mdm-only from applying.
    decision = snap.decide(compliant, "x.mdm.test", RRType.A)
    assert decision.reasons == ("rule:rest", "posture:nope:missing")
    assert decision.ede_text == "blocked by rule rest (posture:nope:missing)"
    assert snap.decide(compliant, "login.bank.test", RRType.A).reasons == (
        "default:allow",
        "sim:swap-recent",
    )
    plain = snap.decide(failed, "y.mdm.test", RRType.A)  # mdm-only needs a passed check
    assert (plain.ede_text, plain.reasons) == (
        "blocked by rule rest (posture:managed-modern:failed)",
        ("rule:rest", "posture:managed-modern:failed"),
    )
    # Who gets another EDE text gets another remembered answer (policy class).
    assert snap.policy_class(failed) != snap.policy_class(compliant)
    stale, _ = _tagged(posture=_posture("16.0", timedelta(days=2)))
    assert snap.policy_class(stale) != snap.policy_class(failed)


def test_identity_kinds_select_and_requirements_all_hold() -> None:
    snap = _snapshot(
        Rule("iot", Action.BLOCK, domains=("e.test",), identity_kinds=("service",)),
        Rule(
            "both",
            Action.BLOCK,
            domains=("f.test",),
            groups=("staff",),
            posture=("managed-modern",),
            sim=("sim.swap_age < 24h",),
        ),
    )
    person, _ = _tagged(posture=_posture("17.1"))
    assert _action(snap, "e.test", who=person) == "allow:"
    assert _action(snap, "e.test", who=replace(person, identity_kind="service")) == "block:iot"
    assert _action(snap, "f.test", who=person) == "allow:"  # named, but not swapped
    swapped, _ = _tagged(posture=_posture("17.1"), signals=SimSignals(swapped_at=NOW))
    assert _action(snap, "f.test", who=swapped) == "block:both"
    assert _action(snap, "f.test", who=replace(swapped, group_ids=frozenset())) == "allow:"


def test_requirements_are_checked_and_kept_as_parsed() -> None:
    rule = Rule(
        "r",
        Action.BLOCK,
        identity_kinds=("service",),
        posture=("!a-b",),
        sim=("  not sim.clone_suspected ",),
    )
    assert (rule.identity_kinds, rule.posture, rule.sim) == (
        ("service",),
        ("!a-b",),
        ("not sim.clone_suspected",),
    )
    for bad in (
        {"identity_kinds": ("robot",)},
        {"posture": ("Bad Name",)},
        {"sim": ("device.managed",)},  # a SIM condition reads no posture
        {"sim": ("sim.swap_age <",)},
    ):
        with pytest.raises(InvalidInput, match="rule r"):
            Rule("r", Action.BLOCK, **bad)  # type: ignore[arg-type]


def test_requesters_share_their_sets_of_groups_fleets_and_tags() -> None:
    # A million live addresses each held three sets of their own for the collector to walk.
    a = Requester("o", "a", frozenset({"staff"}), frozenset(), "esim", "d1", tags=frozenset())
    b = Requester("o", "b", frozenset(["staff"]), frozenset(), "esim", "d2", tags=frozenset())
    assert a.group_ids is b.group_ids
    assert a.fleet_ids is b.fleet_ids
    assert a.tags is b.tags
    # Across a pickle (to the gateway's workers) too, equal and still sharing.
    copy = pickle.loads(pickle.dumps(a))  # noqa: S301 (our own bytes)
    assert copy == a
    assert hash(copy) == hash(a)
    assert copy.group_ids is a.group_ids
    assert shared(frozenset({"staff"})) is a.group_ids
    # Sharing never mixes sets up: other members, another set.
    c = Requester("o", "c", frozenset({"staff", "admins"}))
    assert c.group_ids == {"staff", "admins"}
    assert c.group_ids is not a.group_ids
