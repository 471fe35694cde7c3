"""What applying a document changes: items added, removed, changed and moved, and the subjects
whose ordered list of applying rules (action and target) differs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ztsim.policy import diff
from ztsim.policy.checks import PostureCheck
from ztsim.policy.document import Document
from ztsim.policy.facts import Posture, SimKind, SimSignals, Subject
from ztsim.policy.rules import Plane, PolicyRule

from tests_clock import NOW

MANAGED = PostureCheck("managed", "device.managed")


@dataclass(frozen=True)
class Context:
    identity_id: str | None
    iccid: str | None
    subject: Subject


def _rule(plane: str, name: str, action: str = "allow", **spec: object) -> PolicyRule:
    return PolicyRule.from_spec(plane, name, action, spec)


def _person(identity: str, *, groups: frozenset[str] = frozenset(), managed: bool) -> Context:
    posture = Posture({"managed": managed}, NOW - timedelta(minutes=5))
    subject = Subject("org", identity, group_ids=groups, sim_kind=SimKind.PHYSICAL, posture=posture)
    return Context(identity, f"8900{identity}", subject)


OLD = Document(
    (MANAGED,),
    (
        _rule("network", "finance", groups=["fin"], posture=["managed"], cidrs=["10.1.0.0/16"]),
        _rule("network", "web", cidrs=["10.2.0.0/16"]),
        _rule("network", "ssh", cidrs=["10.3.0.0/16"], protocol="tcp", ports=["22"]),
        _rule("attach", "corp", apns=["corp"]),
    ),
)


def test_an_equal_document_changes_nothing() -> None:
    found = diff.diff(OLD, Document(OLD.checks, OLD.rules), [_person("a", managed=True)], NOW)
    assert found.empty
    assert found.changes == ()
    assert found.subjects == ()


def test_items_added_removed_changed_and_moved() -> None:
    new = Document(
        (PostureCheck("managed", "device.managed", timedelta(hours=1)),),
        (
            _rule("network", "ssh", cidrs=["10.3.0.0/16"], protocol="tcp", ports=["22", "2222"]),
            _rule("network", "finance", groups=["fin"], posture=["managed"], cidrs=["10.1.0.0/16"]),
            _rule("network", "web", cidrs=["10.2.0.0/16"]),
            _rule("dns", "ads", "block", domains=[".ads.example"]),
        ),
    )
    found = diff.document_changes(OLD, new)
    assert [c.to_json() for c in found] == [
        {"change": "changed", "item": "check", "name": "managed", "fields": ["max_age"]},
        {"change": "added", "item": "rule", "name": "ads", "plane": "dns"},
        {
            "change": "changed",
            "item": "rule",
            "name": "ssh",
            "plane": "network",
            "fields": ["ports"],
        },
        # finance and web keep their order; ssh came before them.
        {"change": "moved", "item": "rule", "name": "ssh", "plane": "network"},
        {"change": "removed", "item": "rule", "name": "corp", "plane": "attach"},
    ]


def test_only_subjects_whose_applying_rules_change_are_reported() -> None:
    finance_managed = _person("fm", groups=frozenset({"fin"}), managed=True)
    finance_unmanaged = _person("fu", groups=frozenset({"fin"}), managed=False)
    other = _person("ot", managed=True)
    people = [finance_managed, finance_unmanaged, other]
    widened = _rule("network", "finance", groups=["fin"], posture=["managed"], cidrs=["10.0.0.0/8"])
    new = Document(OLD.checks, (widened, *OLD.rules[1:]))
    found = diff.diff(OLD, new, people, NOW)
    # The unmanaged member's finance rule does not apply to it under either document.
    assert [s.to_json() for s in found.subjects] == [
        {"identity_id": "fm", "iccid": "8900fm", "planes": ["network"]}
    ]
    assert found.identities == ("fm",)
    # A rename that keeps action and target changes no decision.
    renamed = Document(OLD.checks, (*OLD.rules[:3], _rule("attach", "corporate", apns=["corp"])))
    assert diff.diff(OLD, renamed, people, NOW).subjects == ()
    # Removing the attach rule changes every subject's attach plane, and nothing else.
    gone = diff.diff(OLD, Document(OLD.checks, OLD.rules[:3]), people, NOW)
    assert {s.identity_id: s.planes for s in gone.subjects} == {
        "fm": (Plane.ATTACH,),
        "fu": (Plane.ATTACH,),
        "ot": (Plane.ATTACH,),
    }


def test_requirements_are_judged_at_now() -> None:
    swapped = Subject("org", "s", sim_kind=SimKind.ESIM)
    recent = Context("s", None, swapped)
    old = Document(rules=(_rule("attach", "deny-fresh", "deny", sim=["sim.swap_age < 24h"]),))
    new = Document(rules=(_rule("attach", "deny-fresh", "deny", sim=["sim.swap_age < 1h"]),))
    # Never swapped: the swap is infinitely old, neither version applies.
    assert diff.affected(old, new, [recent], NOW) == ()
    fresh = Context(
        "s", None, Subject("org", "s", signals=SimSignals(swapped_at=NOW - timedelta(hours=2)))
    )
    assert diff.affected(old, new, [fresh], NOW) == (
        diff.SubjectChange("s", None, (Plane.ATTACH,)),
    )
