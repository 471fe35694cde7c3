"""Why a subject got the decision it got, rule by rule, in words a non-expert can follow.

`explain` returns the decision (from the compiled policy, so it is the one enforced),
the subject's policy class and, for every rule of the plane in order, whether the rule
is for this subject, whether its requirements were met (each with its reason code),
whether it covers the target, and whether it decided. `to_json` is the API's shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ztsim.policy.checks import PostureCheck
from ztsim.policy.compile import CompiledPolicy
from ztsim.policy.facts import Subject
from ztsim.policy.reference import Decision, Requirement, judge
from ztsim.policy.rules import DEFAULT_ACTION, Plane, PolicyRule
from ztsim.policy.targets import AttachRequest, DnsQuery, ListMatcher, Query, matches, no_lists


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """One rule of the plane as it went for this subject and target."""

    rule: str
    action: str
    for_subject: bool  # its selectors name the subject (or it is for everyone)
    requirements: tuple[Requirement, ...]  # judged only for rules that are for the subject
    target_matched: bool
    decided: bool

    @property
    def requirements_met(self) -> bool:
        return all(r.held for r in self.requirements)

    @property
    def note(self) -> str:
        """One sentence on what this rule did."""
        if not self.for_subject:
            return "Not for this subject: none of its identities, groups, fleets or kinds match."
        if not self.target_matched:
            return "For this subject, but it does not cover this target."
        if not self.requirements_met:
            failed = next(r for r in self.requirements if not r.held)
            why = ", ".join(failed.codes) or "condition false"
            return f"Would apply, but its requirement {failed.text!r} was not met ({why})."
        if self.decided:
            return f"Applied: this rule decided ({self.action})."
        return "Would also apply, but an earlier rule decided first."

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "action": self.action,
            "for_subject": self.for_subject,
            "requirements_met": self.requirements_met if self.for_subject else None,
            "requirements": [
                {"requirement": r.text, "met": r.held, "reasons": list(r.codes)}
                for r in self.requirements
            ],
            "target_matched": self.target_matched,
            "decided": self.decided,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    plane: Plane
    target: Query
    decision: Decision
    class_id: int
    until: datetime | None  # the class may change by time alone at this instant
    trace: tuple[RuleTrace, ...]

    @property
    def summary(self) -> str:
        """The decision in one or two sentences."""
        verdict = {"deny": "Denied", "block": "Blocked", "allow": "Allowed"}.get(
            self.decision.action, f"Answered with {self.decision.action}"
        )
        if self.decision.rule is not None:
            text = f"{verdict} by rule {self.decision.rule!r}."
        else:
            text = (
                f"{verdict}: no rule applied, so the {self.plane} default "
                f"({DEFAULT_ACTION[self.plane]}) did."
            )
        missed = []
        for t in self.trace:
            if t.decided:
                break  # rules after the deciding one did not matter
            if t.for_subject and t.target_matched and not t.requirements_met:
                missed.append(t)
        if missed:
            names = ", ".join(repr(t.rule) for t in missed)
            text += f" Rules that would have applied but whose requirements were not met: {names}."
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "plane": self.plane.value,
            "target": _target_json(self.target),
            "action": self.decision.action,
            "rule": self.decision.rule,
            "reasons": list(self.decision.reasons),
            "summary": self.summary,
            "class_id": self.class_id,
            "until": None if self.until is None else self.until.isoformat(),
            "rules": [t.to_json() for t in self.trace],
        }


def _target_json(target: Query) -> dict[str, Any]:
    if isinstance(target, DnsQuery):
        return {"qname": target.qname, "qtype": target.qtype}
    if isinstance(target, AttachRequest):
        return {"apn": target.apn}
    out: dict[str, Any] = {
        "address": target.address,
        "protocol": target.protocol,
        "port": target.port,
    }
    if target.names:  # only when asked with names: the API's shape is unchanged otherwise
        out["names"] = sorted(target.names)
    return out


def explain(
    policy: CompiledPolicy | tuple[Sequence[PolicyRule], Mapping[str, PostureCheck]],
    subject: Subject,
    plane: Plane | str,
    target: Query,
    now: datetime,
    lists: ListMatcher = no_lists,
) -> Explanation:
    """The decision for `subject` on `target` with a per-rule trace; `policy` is compiled,
    or rules and checks to compile for this one question."""
    if not isinstance(policy, CompiledPolicy):
        rules, checks = policy
        policy = CompiledPolicy(subject.org_id, rules, checks, cache_size=0)
    plane = Plane(plane)
    classification = policy.classify(subject, now)
    decision = policy.decide(classification.class_id, plane, target, lists)
    trace = []
    decided = False
    for rule in policy.rules:
        if rule.plane is not plane:
            continue
        named = rule.selector.names(subject)
        judged = judge(rule, policy.checks, subject, now) if named else ()
        matched = matches(rule, target, lists)
        this = (
            not decided
            and named
            and matched
            and all(r.held for r in judged)
            and rule.name == decision.rule
        )
        decided = decided or this
        trace.append(RuleTrace(rule.name, rule.action, named, judged, matched, this))
    return Explanation(
        plane, target, decision, classification.class_id, classification.until, tuple(trace)
    )
