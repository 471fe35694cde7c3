"""What applying a policy document would change: its checks and rules, and whose decisions.

The document part is exact: checks and rules added, removed or changed (with the fields
that changed), and rules that moved within their plane (kept names out of their old
relative order).

The subject part is a definition, deliberately simple: a subject's decisions in a plane
change if the ordered list of the plane's rules that APPLY to it now (its selectors name
the subject and every requirement holds at `now`), each as its action and target, is
not the same under both documents. It may over-report: a rule that changes for a subject
but never matches its traffic still counts, since which targets a subject will ask for
is not known. It does not under-report: decisions depend on nothing else (the targets
and lists aside, which both documents share). Pure.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ztsim.policy.checks import PostureCheck
from ztsim.policy.document import Document, check_json
from ztsim.policy.facts import Subject
from ztsim.policy.reference import judge
from ztsim.policy.rules import Plane, PolicyRule, Target


class HasSubject(Protocol):
    """A subject with what it was read from (`ztsim.policy.store.facts.SubjectContext`)."""

    @property
    def identity_id(self) -> str | None: ...
    @property
    def iccid(self) -> str | None: ...
    @property
    def subject(self) -> Subject: ...


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # added, removed, changed, moved
    item: str  # check, rule
    name: str
    plane: Plane | None = None  # a rule's
    fields: tuple[str, ...] = ()  # of a changed item

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"change": self.kind, "item": self.item, "name": self.name}
        if self.plane is not None:
            out["plane"] = self.plane.value
        if self.fields:
            out["fields"] = list(self.fields)
        return out


@dataclass(frozen=True, slots=True)
class SubjectChange:
    """A subject whose decisions change, and in which planes."""

    identity_id: str | None
    iccid: str | None
    planes: tuple[Plane, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "identity_id": self.identity_id,
            "iccid": self.iccid,
            "planes": [p.value for p in self.planes],
        }


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    changes: tuple[Change, ...]
    subjects: tuple[SubjectChange, ...]

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def identities(self) -> tuple[str, ...]:
        """The identities whose decisions change, each once, in order."""
        found = (s.identity_id for s in self.subjects if s.identity_id is not None)
        return tuple(dict.fromkeys(found))

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": [c.to_json() for c in self.changes],
            "subjects": [s.to_json() for s in self.subjects],
            "identities": list(self.identities),
        }


def _fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k))


def _rule_fields(rule: PolicyRule) -> dict[str, Any]:
    return {"action": rule.action, **rule.to_spec()}


def _check_changes(old: Iterable[PostureCheck], new: Iterable[PostureCheck]) -> list[Change]:
    before = {c.name: check_json(c) for c in old}
    after = {c.name: check_json(c) for c in new}
    out = [Change("removed", "check", n) for n in before if n not in after]
    for name, fields in after.items():
        if name not in before:
            out.append(Change("added", "check", name))
        elif before[name] != fields:
            out.append(Change("changed", "check", name, fields=_fields(before[name], fields)))
    return out


def _rule_changes(plane: Plane, old: Document, new: Document) -> list[Change]:
    before = {r.name: _rule_fields(r) for r in old.rules_of(plane)}
    after = {r.name: _rule_fields(r) for r in new.rules_of(plane)}
    out = [Change("removed", "rule", n, plane) for n in before if n not in after]
    for name, fields in after.items():
        if name not in before:
            out.append(Change("added", "rule", name, plane))
        elif before[name] != fields:
            out.append(Change("changed", "rule", name, plane, _fields(before[name], fields)))
    kept_before = [n for n in before if n in after]
    kept_after = [n for n in after if n in before]
    matcher = difflib.SequenceMatcher(a=kept_before, b=kept_after, autojunk=False)
    in_order = {
        n
        for block in matcher.get_matching_blocks()
        for n in kept_after[block.b : block.b + block.size]
    }
    out += [Change("moved", "rule", n, plane) for n in kept_after if n not in in_order]
    return out


def document_changes(old: Document, new: Document) -> tuple[Change, ...]:
    """Checks, then each plane's rules: what applying `new` over `old` changes."""
    out = _check_changes(old.checks, new.checks)
    for plane in Plane:
        out += _rule_changes(plane, old, new)
    return tuple(out)


def applying(
    document: Document, subject: Subject, plane: Plane, now: datetime
) -> tuple[tuple[str, Target], ...]:
    """The plane's rules that apply to `subject` at `now`, in order, as (action, target)."""
    checks = document.check_map
    return tuple(
        (rule.action, rule.target)
        for rule in document.rules_of(plane)
        if rule.selector.names(subject) and all(r.held for r in judge(rule, checks, subject, now))
    )


def affected(
    old: Document, new: Document, subjects: Iterable[HasSubject], now: datetime
) -> tuple[SubjectChange, ...]:
    """The subjects whose decisions change (see the module's definition)."""
    out = []
    for context in subjects:
        planes = tuple(
            plane
            for plane in Plane
            if applying(old, context.subject, plane, now)
            != applying(new, context.subject, plane, now)
        )
        if planes:
            out.append(SubjectChange(context.identity_id, context.iccid, planes))
    return tuple(out)


def diff(old: Document, new: Document, subjects: Iterable[HasSubject], now: datetime) -> PolicyDiff:
    changes = document_changes(old, new)
    return PolicyDiff(changes, affected(old, new, subjects, now) if changes else ())
