"""An org's rules compiled for speed: subjects sorted into policy classes, decisions per class.

Two subjects are in the same POLICY CLASS when every rule would treat them alike: the same
rules name them, and the requirements of those rules (posture checks, SIM conditions)
come out the same. So a decision is made once per class and target, not per subject.

Classifying a subject ORs the bitmasks of rules its selector values name (an inverted
index from identity, group, fleet, SIM kind and identity kind to rule bits, plus the
rules that name anyone), then evaluates each check and condition those rules use once.
The class signature is that mask with those outcomes; equal signatures share an id for the
life of the object. Facts age by themselves (a report goes stale, a swap gets old, its
cooling-off ends), so a classification also says until when it stands.
`ztsim.policy.reference` is the semantics; this module must agree with it, reasons
included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import TypeVar

from ztsim.errors import InvalidInput, NotFound
from ztsim.policy import reasons
from ztsim.policy.checks import CheckStatus, PostureCheck
from ztsim.policy.conditions import Condition
from ztsim.policy.facts import Subject
from ztsim.policy.reference import (
    Decision,
    Requirement,
    first_failure,
    held_codes,
    posture_requirement,
    unique,
)
from ztsim.policy.rules import DEFAULT_ACTION, Plane, PolicyRule
from ztsim.policy.targets import ListMatcher, Query, matches, no_lists

K = TypeVar("K")
DEFAULT_CACHE = 65_536  # decisions kept per compiled policy (class, plane, target, lists)
STEP_CACHE = 4_096  # classes x planes whose named rules are kept laid out for deciding
_Status = CheckStatus | bool | None  # a check's status (None: no such check) or a condition's


@dataclass(frozen=True, slots=True)
class Classification:
    """A subject's class, and the instant it may change by time alone (None: it will not)."""

    class_id: int
    until: datetime | None


@dataclass(frozen=True, slots=True)
class _Need:
    """A distinct thing rules require: a named check (None: it does not exist) or a SIM
    condition, and the mask of the rules that require it."""

    check: PostureCheck | None
    condition: Condition | None
    rules: int

    def evaluate(self, subject: Subject, now: datetime) -> tuple[_Status, datetime | None]:
        if self.condition is not None:
            outcome = self.condition.evaluate(subject, now)
            return outcome.holds, outcome.until
        if self.check is None:
            return None, None
        result = self.check.evaluate(subject, now)
        return result.status, result.until


@dataclass(frozen=True, slots=True)
class _Step:
    """One named rule of a plane as a class sees it: applies or not, and its codes."""

    rule: PolicyRule
    applies: bool
    codes: tuple[str, ...]  # if it applies: `rule:<name>` and held codes; else the skip codes


def _bits(mask: int) -> list[int]:
    """The indices of the set bits, lowest first."""
    text = bin(mask)[:1:-1]
    out, at = [], text.find("1")
    while at >= 0:
        out.append(at)
        at = text.find("1", at + 1)
    return out


class CompiledPolicy:
    """One org's rules and checks, ready to classify subjects and decide per class."""

    def __init__(
        self,
        org_id: str,
        rules: Iterable[PolicyRule],
        checks: Mapping[str, PostureCheck],
        *,
        cache_size: int = DEFAULT_CACHE,
    ) -> None:
        if not org_id:
            raise InvalidInput("a compiled policy belongs to an org")
        for name, check in checks.items():
            if name != check.name:
                raise InvalidInput(f"posture check {check.name} filed under {name!r}")
        self.org_id = org_id
        self.rules = tuple(rules)
        self.checks: Mapping[str, PostureCheck] = MappingProxyType(dict(checks))
        self._cache_size = max(0, cache_size)
        self._index()
        self._classes: dict[tuple[int, tuple[_Status, ...]], int] = {}
        self._signatures: list[tuple[int, tuple[_Status, ...]]] = []
        self._steps: dict[tuple[int, Plane], tuple[_Step, ...]] = {}
        self._decisions: dict[tuple[int, Plane, Query, ListMatcher], Decision] = {}

    def _index(self) -> None:
        by: dict[str, dict[str, int]] = {
            k: {} for k in ("identity", "group", "fleet", "sim_kind", "identity_kind")
        }
        anyone = 0
        need_of: dict[tuple[str, str], int] = {}
        needs: list[tuple[PostureCheck | None, Condition | None]] = []
        need_masks: list[int] = []
        self._plane_masks = dict.fromkeys(Plane, 0)

        def need(key: tuple[str, str], value: tuple[PostureCheck | None, Condition | None]) -> int:
            if key not in need_of:
                need_of[key] = len(needs)
                needs.append(value)
                need_masks.append(0)
            return need_of[key]

        uses: list[tuple[int, ...]] = []
        for i, rule in enumerate(self.rules):
            bit = 1 << i
            self._plane_masks[rule.plane] |= bit
            s = rule.selector
            if s.names_anyone:
                anyone |= bit
            for kind, values in (
                ("identity", s.identities),
                ("group", s.groups),
                ("fleet", s.fleets),
                ("sim_kind", {k.value for k in s.sim_kinds}),
                ("identity_kind", {k.value for k in s.identity_kinds}),
            ):
                index = by[kind]
                for value in values:
                    index[value] = index.get(value, 0) | bit
            used = [need(("posture", p.check), (self.checks.get(p.check), None)) for p in s.posture]
            used += [need(("sim", c.text), (None, c)) for c in s.sim]
            for n in used:
                need_masks[n] |= bit
            uses.append(tuple(used))
        self._by = by
        self._anyone = anyone
        self._needs = tuple(
            _Need(c, cond, m) for (c, cond), m in zip(needs, need_masks, strict=True)
        )
        self._requiring = 0
        for m in need_masks:
            self._requiring |= m
        self._uses = tuple(uses)
        # A rule without requirements looks the same to every class that it names.
        self._plain = {
            i: _Step(rule, True, (reasons.rule(rule.name),))
            for i, rule in enumerate(self.rules)
            if not uses[i]
        }

    # -- classes -------------------------------------------------------------------------

    def _named(self, subject: Subject) -> int:
        by = self._by
        mask = self._anyone
        if subject.identity_id is not None:
            mask |= by["identity"].get(subject.identity_id, 0)
        groups = by["group"]
        for group in subject.group_ids:
            mask |= groups.get(group, 0)
        fleets = by["fleet"]
        for fleet in subject.fleet_ids:
            mask |= fleets.get(fleet, 0)
        if subject.sim_kind is not None:
            mask |= by["sim_kind"].get(subject.sim_kind.value, 0)
        if subject.identity_kind is not None:
            mask |= by["identity_kind"].get(subject.identity_kind.value, 0)
        return mask

    def classify(self, subject: Subject, now: datetime) -> Classification:
        """The subject's class at `now`, and until when it stands unless facts change."""
        if subject.org_id != self.org_id:
            raise InvalidInput("the subject belongs to another org")
        named = self._named(subject)
        statuses: list[_Status] = []
        until: datetime | None = None
        if named & self._requiring:
            for need in self._needs:
                if need.rules & named:
                    status, flips = need.evaluate(subject, now)
                    statuses.append(status)
                    if flips is not None and (until is None or flips < until):
                        until = flips
        signature = (named, tuple(statuses))
        class_id = self._classes.get(signature)
        if class_id is None:
            class_id = self._classes[signature] = len(self._signatures)
            self._signatures.append(signature)
        return Classification(class_id, until)

    def classify_many(self, subjects: Mapping[K, Subject], now: datetime) -> dict[K, int]:
        """Every subject's class id at `now`, by the caller's key."""
        classify = self.classify
        return {key: classify(subject, now).class_id for key, subject in subjects.items()}

    @property
    def class_count(self) -> int:
        """How many distinct classes the subjects seen so far fall into."""
        return len(self._signatures)

    # -- decisions -----------------------------------------------------------------------

    def _plane_steps(self, class_id: int, plane: Plane) -> tuple[_Step, ...]:
        steps = self._steps.get((class_id, plane))
        if steps is not None:
            return steps
        if not 0 <= class_id < len(self._signatures):
            raise NotFound(f"policy class {class_id} is not known")
        named, statuses = self._signatures[class_id]
        used = [n for n, need in enumerate(self._needs) if need.rules & named]
        status_of = dict(zip(used, statuses, strict=True))
        out = []
        for i in _bits(named & self._plane_masks[plane]):
            plain = self._plain.get(i)
            if plain is not None:
                out.append(plain)
                continue
            rule = self.rules[i]
            judged = self._judged(rule, self._uses[i], status_of)
            if all(r.held for r in judged):
                codes = (reasons.rule(rule.name), *held_codes(rule, judged))
                out.append(_Step(rule, True, codes))
            else:
                out.append(_Step(rule, False, first_failure(judged)))
        if len(self._steps) >= STEP_CACHE:
            del self._steps[next(iter(self._steps))]
        steps = self._steps[(class_id, plane)] = tuple(out)
        return steps

    def _judged(
        self, rule: PolicyRule, uses: tuple[int, ...], status_of: dict[int, _Status]
    ) -> tuple[Requirement, ...]:
        postures = rule.selector.posture
        out = []
        for k, n in enumerate(uses):
            status = status_of[n]
            if k < len(postures):
                assert not isinstance(status, bool)
                out.append(posture_requirement(postures[k], status))
            else:
                condition = rule.selector.sim[k - len(postures)]
                codes = reasons.condition(condition)
                out.append(Requirement(condition.text, status is True, codes))
        return tuple(out)

    def applying_rules(self, class_id: int, plane: Plane | str) -> tuple[PolicyRule, ...]:
        """The rules of `plane` that apply to every subject of the class (named by their
        selectors, every requirement held), in evaluation order: what an enforcement
        point compiles for the class (the `network` plane's nftables chain)."""
        return tuple(s.rule for s in self._plane_steps(class_id, Plane(plane)) if s.applies)

    def decide(
        self,
        class_id: int,
        plane: Plane | str,
        target: Query,
        lists: ListMatcher = no_lists,
    ) -> Decision:
        """The decision for every subject of the class asking about `target` in `plane`."""
        plane = Plane(plane)
        key = (class_id, plane, target, lists)
        decision = self._decisions.get(key)
        if decision is not None:
            return decision
        decision = self._decide(class_id, plane, target, lists)
        if self._cache_size:
            if len(self._decisions) >= self._cache_size:
                # Oldest first: a policy's working set of targets is small and recent.
                del self._decisions[next(iter(self._decisions))]
            self._decisions[key] = decision
        return decision

    def _decide(self, class_id: int, plane: Plane, target: Query, lists: ListMatcher) -> Decision:
        skipped: list[str] = []
        for step in self._plane_steps(class_id, plane):
            if not matches(step.rule, target, lists):
                continue
            if step.applies:
                return Decision(step.rule.action, step.rule.name, unique([*step.codes, *skipped]))
            skipped.extend(step.codes)
        default = DEFAULT_ACTION[plane]
        first = reasons.DEFAULT_ALLOW if default == "allow" else reasons.DEFAULT_DENY
        return Decision(default, None, unique([first, *skipped]))
