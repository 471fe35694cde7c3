"""`policy explain`: the enforced decision, with each rule's part in it in plain words."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from ztsim.policy.checks import PostureCheck
from ztsim.policy.compile import CompiledPolicy
from ztsim.policy.explain import explain
from ztsim.policy.facts import Posture, SimSignals, Subject
from ztsim.policy.rules import PolicyRule
from ztsim.policy.targets import DnsQuery, Flow, parse_target

from tests_clock import NOW

CHECKS = {"managed": PostureCheck("managed", "device.managed", timedelta(hours=4))}


def _rule(plane: str, name: str, action: str, **spec: Any) -> PolicyRule:
    return PolicyRule.from_spec(plane, name, action, spec)


RULES = [
    _rule("dns", "ads", "block", domains=[".ads.test"]),
    _rule("network", "bob-only", "allow", identities=["bob"]),
    _rule("network", "managed-web", "allow", cidrs=["10.0.0.0/8"], posture=["managed"]),
    _rule("network", "elsewhere", "allow", cidrs=["192.0.2.0/24"]),
    _rule("network", "lab", "deny", groups=["lab"]),
    _rule("network", "after", "allow", cidrs=["10.0.0.0/8"]),
]
WEB = Flow("10.1.2.3", "tcp", 443)


def _who(managed: bool, *groups: str) -> Subject:
    posture = Posture({"managed": managed}, NOW - timedelta(hours=1))
    return Subject("o", "alice", group_ids=frozenset(groups), posture=posture)


def test_a_denied_subject_learns_which_check_denied_them() -> None:
    policy = CompiledPolicy("o", RULES, CHECKS)
    found = explain(policy, _who(False, "lab"), "network", WEB, NOW)
    assert (found.decision.action, found.decision.rule) == ("deny", "lab")
    assert found.decision.reasons == ("rule:lab", "posture:managed:failed")
    assert found.class_id == policy.classify(_who(False, "lab"), NOW).class_id
    assert found.until == NOW + timedelta(hours=3)
    assert [t.rule for t in found.trace] == [
        "bob-only", "managed-web", "elsewhere", "lab", "after",
    ]  # fmt: skip
    bob, managed, elsewhere, lab, after = found.trace
    assert not bob.for_subject
    assert bob.requirements == ()  # not judged for someone the rule is not for
    assert (managed.for_subject, managed.target_matched, managed.requirements_met) == (
        True,
        True,
        False,
    )
    assert [(r.text, r.held, r.codes) for r in managed.requirements] == [
        ("managed", False, ("posture:managed:failed",))
    ]
    assert (elsewhere.for_subject, elsewhere.target_matched) == (True, False)
    assert lab.decided
    assert (after.for_subject, after.target_matched, after.decided) == (True, True, False)
    assert [t.decided for t in found.trace] == [False, False, False, True, False]
    assert found.summary == (
        "Denied by rule 'lab'. Rules that would have applied but whose requirements "
        "were not met: 'managed-web'."
    )
    assert managed.note == (
        "Would apply, but its requirement 'managed' was not met (posture:managed:failed)."
    )
    assert bob.note.startswith("Not for this subject")
    assert elsewhere.note == "For this subject, but it does not cover this target."
    assert lab.note == "Applied: this rule decided (deny)."
    assert after.note == "Would also apply, but an earlier rule decided first."


def test_the_default_is_explained_too() -> None:
    found = explain((RULES, CHECKS), _who(False), "network", Flow("203.0.113.1", "udp", 53), NOW)
    assert found.decision.rule is None
    assert found.summary == "Denied: no rule applied, so the network default (deny) did."
    allowed = explain((RULES, CHECKS), _who(True), "dns", DnsQuery("x.test"), NOW)
    assert allowed.summary == "Allowed: no rule applied, so the dns default (allow) did."
    blocked = explain((RULES, CHECKS), _who(True), "dns", parse_target("dns", "x.ads.test"), NOW)
    assert blocked.summary == "Blocked by rule 'ads'."


def test_rules_and_checks_explain_as_their_compiled_policy_does() -> None:
    who = _who(True)
    compiled = explain(CompiledPolicy("o", RULES, CHECKS), who, "network", WEB, NOW)
    plain = explain((RULES, CHECKS), who, "network", WEB, NOW)
    assert plain.decision == compiled.decision
    assert plain.decision.rule == "managed-web"
    assert plain.trace == compiled.trace
    assert plain.to_json() == compiled.to_json()


def test_a_cooling_off_is_explained_with_its_end() -> None:
    finance = _rule(
        "network", "finance", "allow", cidrs=["10.0.0.0/8"], sim=["not sim.swap_recent"]
    )
    ends = NOW + timedelta(hours=30)
    swapped = Subject("o", "alice", signals=SimSignals(swapped_at=NOW, swap_recent_until=ends))
    found = explain(([finance], CHECKS), swapped, "network", WEB, NOW)
    assert found.decision.reasons == ("default:deny", "sim:swap-recent")
    assert found.until == ends  # when the same question gets another answer
    assert found.summary == (
        "Denied: no rule applied, so the network default (deny) did. Rules that would have "
        "applied but whose requirements were not met: 'finance'."
    )
    (trace,) = found.trace
    assert [(r.text, r.held, r.codes) for r in trace.requirements] == [
        ("not sim.swap_recent", False, ("sim:swap-recent",))
    ]
    assert trace.note == (
        "Would apply, but its requirement 'not sim.swap_recent' was not met (sim:swap-recent)."
    )
    later = explain(([finance], CHECKS), swapped, "network", WEB, ends)
    assert (later.decision.rule, later.until) == ("finance", None)


def test_to_json_is_the_api_shape() -> None:
    found = explain((RULES, CHECKS), _who(False, "lab"), "network", WEB, NOW)
    shown = json.loads(json.dumps(found.to_json()))
    assert shown["plane"] == "network"
    assert shown["target"] == {"address": "10.1.2.3", "protocol": "tcp", "port": 443}
    assert shown["action"] == "deny"
    assert shown["rule"] == "lab"
    assert shown["reasons"] == ["rule:lab", "posture:managed:failed"]
    assert shown["summary"] == found.summary
    assert shown["until"] == "2026-11-24T15:00:00+00:00"
    assert shown["class_id"] == found.class_id
    assert shown["rules"][0] == {
        "rule": "bob-only",
        "action": "allow",
        "for_subject": False,
        "requirements_met": None,
        "requirements": [],
        "target_matched": True,
        "decided": False,
        "note": "Not for this subject: none of its identities, groups, fleets or kinds match.",
    }
    assert shown["rules"][1]["requirements"] == [
        {"requirement": "managed", "met": False, "reasons": ["posture:managed:failed"]}
    ]
    dns = explain((RULES, CHECKS), _who(True), "dns", DnsQuery("a.ads.test", 28), NOW).to_json()
    assert dns["target"] == {"qname": "a.ads.test", "qtype": 28}
    attach = explain((RULES, CHECKS), _who(True), "attach", parse_target("attach", "mms"), NOW)
    assert attach.to_json()["target"] == {"apn": "mms"}
    assert attach.to_json()["rules"] == []


def test_a_flow_is_explained_with_the_names_its_address_is_known_under() -> None:
    rules = [_rule("network", "intranet", "allow", domains=["intranet.acme.test"])]
    named = parse_target("network", "192.0.2.7:80/tcp as intranet.acme.test")
    found = explain((rules, {}), _who(False), "network", named, NOW)
    assert found.decision.rule == "intranet"
    assert found.to_json()["target"] == {
        "address": "192.0.2.7",
        "protocol": "tcp",
        "port": 80,
        "names": ["intranet.acme.test"],
    }
    unnamed = explain((rules, {}), _who(False), "network", Flow("192.0.2.7", "tcp", 80), NOW)
    assert unnamed.decision.rule is None
    assert "names" not in unnamed.to_json()["target"]  # the shape without names is unchanged
    assert unnamed.trace[0].note == "For this subject, but it does not cover this target."
