"""The policy semantics as a plain evaluator: written to be obviously right, not fast.

It reads `ztsim.policy.rules` word for word: walk the plane's rules in order; the first
rule that names the subject, whose every requirement holds and whose target matches,
decides; with none, the plane's default does. `ztsim.policy.compile` must agree with it
on every input (a property test holds it to that), reasons included.

Reasons say what a person needs to know: the deciding rule, the negated posture checks
and SIM conditions that let it apply, and, for each rule that would have applied had a
requirement held (before the deciding one), the first requirement that did not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from ztsim.errors import InvalidInput
from ztsim.policy import reasons
from ztsim.policy.checks import CheckStatus, PostureCheck
from ztsim.policy.facts import Subject
from ztsim.policy.rules import ACTIONS, DEFAULT_ACTION, Plane, PolicyRule, PostureRequirement
from ztsim.policy.targets import ListMatcher, Query, matches, no_lists


@dataclass(frozen=True, slots=True)
class Decision:
    """What a plane does (`action`), which rule said so (None: the default) and why."""

    action: str
    rule: str | None
    reasons: tuple[str, ...]

    def __post_init__(self) -> None:
        if not any(self.action in actions for actions in ACTIONS.values()):
            raise InvalidInput(f"{self.action!r} is no plane's action")
        if not self.reasons:
            raise InvalidInput("a decision carries at least one reason")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One requirement of a rule, judged for one subject at one instant."""

    text: str  # as written: `managed`, `!jailbroken`, `sim.swap_age < 24h`
    held: bool
    codes: tuple[str, ...]  # the reason codes it contributes, held or not


def posture_requirement(requirement: PostureRequirement, status: CheckStatus | None) -> Requirement:
    """A posture requirement given its check's status (None: no such check, fail closed)."""
    if status is None:
        return Requirement(str(requirement), False, (f"posture:{requirement.check}:missing",))
    passed = status is CheckStatus.PASSED
    held = passed if requirement.must_pass else not passed
    return Requirement(str(requirement), held, (reasons.posture(requirement.check, status),))


def judge(
    rule: PolicyRule, checks: Mapping[str, PostureCheck], subject: Subject, now: datetime
) -> tuple[Requirement, ...]:
    """Every requirement of the rule, in the order written: posture checks, then SIM."""
    out = []
    for requirement in rule.selector.posture:
        check = checks.get(requirement.check)
        status = None if check is None else check.evaluate(subject, now).status
        out.append(posture_requirement(requirement, status))
    for condition in rule.selector.sim:
        held = condition.evaluate(subject, now).holds
        out.append(Requirement(condition.text, held, reasons.condition(condition)))
    return tuple(out)


def held_codes(rule: PolicyRule, judged: tuple[Requirement, ...]) -> tuple[str, ...]:
    """The codes of the requirements that let a deciding rule apply and are worth saying:
    a `!check` that held, a SIM condition that held (a passed check goes without saying)."""
    out: list[str] = []
    negated = [not p.must_pass for p in rule.selector.posture] + [True] * len(rule.selector.sim)
    for requirement, worth_saying in zip(judged, negated, strict=True):
        if requirement.held and worth_saying:
            out.extend(requirement.codes)
    return tuple(out)


def first_failure(judged: tuple[Requirement, ...]) -> tuple[str, ...]:
    """The codes of the first requirement that did not hold (none if all held)."""
    for requirement in judged:
        if not requirement.held:
            return requirement.codes
    return ()


def unique(codes: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(codes))


def decide(
    rules: Iterable[PolicyRule],
    checks: Mapping[str, PostureCheck],
    subject: Subject,
    plane: Plane | str,
    target: Query,
    now: datetime,
    lists: ListMatcher = no_lists,
) -> Decision:
    """The decision for `subject` asking about `target` in `plane` at `now`."""
    plane = Plane(plane)
    skipped: list[str] = []
    for rule in rules:
        if rule.plane is not plane:
            continue
        if not rule.selector.names(subject):
            continue
        if not matches(rule, target, lists):
            continue
        judged = judge(rule, checks, subject, now)
        if all(requirement.held for requirement in judged):
            codes = [reasons.rule(rule.name), *held_codes(rule, judged), *skipped]
            return Decision(rule.action, rule.name, unique(codes))
        skipped.extend(first_failure(judged))
    default = DEFAULT_ACTION[plane]
    first = reasons.DEFAULT_ALLOW if default == "allow" else reasons.DEFAULT_DENY
    return Decision(default, None, unique([first, *skipped]))
