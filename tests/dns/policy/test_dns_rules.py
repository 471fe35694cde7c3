"""Rules as data compiled to a snapshot: selectors, order, allow-list-only fleets, lists."""

from __future__ import annotations

import pytest

from ztsim.dns.policy.feeds import sample_feeds
from ztsim.dns.policy.identity import Requester
from ztsim.dns.policy.lists import ListFormat, parse_list
from ztsim.dns.policy.rules import Action, Category, OrgPolicy, OrgSettings, PolicyData, Rule
from ztsim.dns.policy.snapshot import ALLOW_LIST_ONLY, PolicySnapshot
from ztsim.dns.wire.constants import EdeCode, RRType
from ztsim.errors import InvalidInput

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
