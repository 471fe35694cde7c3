"""The attach plane of an org's policy as the AAA applies it, sans I/O.

An org with attach rules has a `CompiledPolicy`; each of its SIMs (by IMSI) has an
`AttachClass`: its policy class and until when that class stands by time alone (a
posture report goes stale, a SIM swap ages, a swap's cooling-off ends). `judge` decides
one Access-Request from them after the built-in checks have accepted it; decisions are
cached per (class, APN) by the compiled policy, so the work per request is two dict
lookups.

A class past its `until` is re-classified on the spot from the subject it keeps, so a
request is never decided on facts that have aged out; `Deadlines` tells the AAA when to
re-classify for good (and re-decide the SIM's live sessions). A SIM that the AAA has no
class for in an org with attach rules is refused: facts it could not read must not let
it in.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple

from ztsim.errors import InvalidInput
from ztsim.policy.compile import CompiledPolicy
from ztsim.policy.facts import Subject
from ztsim.policy.reference import Decision as PolicyDecision
from ztsim.policy.rules import Plane
from ztsim.policy.targets import AttachRequest

# The reason code of a refusal for want of facts (not one of `ztsim.policy.reasons`: no
# rule or check decided it).
UNCLASSIFIED = "attach:unclassified"
# An APN that no attach target can name (the gateway allows it, the policy cannot read it).
BAD_APN = "attach:apn-unreadable"
_ALLOW = "allow"


class AttachClass(NamedTuple):
    """A SIM's class under its org's compiled policy (class ids mean nothing under
    another). `subject` is kept only while `until` is set: what re-classifying needs."""

    policy: CompiledPolicy
    class_id: int
    until: datetime | None
    subject: Subject | None

    def current(self, now: datetime | None) -> int:
        """The class id at `now` (None: as classified)."""
        if now is None or self.until is None or now < self.until or self.subject is None:
            return self.class_id
        return self.policy.classify(self.subject, now).class_id


def classify(policy: CompiledPolicy, subject: Subject, now: datetime) -> AttachClass:
    found = policy.classify(subject, now)
    return AttachClass(
        policy, found.class_id, found.until, subject if found.until is not None else None
    )


def classify_all(
    policies: Mapping[str, CompiledPolicy],
    subjects: Mapping[str, Subject | None],
    now: datetime,
) -> dict[str, AttachClass | None]:
    """Each IMSI's class under its org's policy; None for a SIM gone (subject None) or of
    an org without attach rules, so that a patch forgets it."""
    out: dict[str, AttachClass | None] = {}
    for imsi, subject in subjects.items():
        policy = None if subject is None else policies.get(subject.org_id)
        out[imsi] = None if policy is None or subject is None else classify(policy, subject, now)
    return out


@functools.lru_cache(maxsize=4096)
def _target(apn: str) -> AttachRequest | None:
    try:
        return AttachRequest(apn)
    except InvalidInput:
        return None


@functools.cache
def _refusal(code: str) -> PolicyDecision:
    return PolicyDecision("deny", None, (code,))


def judge(
    policy: CompiledPolicy, entry: AttachClass | None, apn: str, now: datetime | None
) -> PolicyDecision:
    """The attach decision for a SIM of `policy`'s org asking for `apn`."""
    if entry is None or entry.policy is not policy:
        return _refusal(UNCLASSIFIED)
    target = _target(apn)
    if target is None:
        return _refusal(BAD_APN)
    return policy.decide(entry.current(now), Plane.ATTACH, target)


def allows(decision: PolicyDecision) -> bool:
    return decision.action == _ALLOW


class Deadlines:
    """When each IMSI's class is next to be re-classified: a heap of (instant, IMSI)
    with lazy removal (an item whose instant is no longer its IMSI's is dropped when it
    comes up). Not thread-safe: used under the core's lock."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, str]] = []
        self._at: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._at)

    def set(self, imsi: str, until: datetime | None) -> None:
        """`imsi` is next due at `until` (None: never)."""
        if until is None:
            self._at.pop(imsi, None)
            return
        if self._at.get(imsi) == until:
            return
        self._at[imsi] = until
        heapq.heappush(self._heap, (until, imsi))
        if len(self._heap) > 2 * len(self._at) + 64:
            # Re-classified often, IMSIs leave dead items behind: rebuilt from the live.
            self._heap = [(at, key) for key, at in self._at.items()]
            heapq.heapify(self._heap)

    def next(self) -> datetime | None:
        """The earliest instant an IMSI is due (None: none is)."""
        heap, at = self._heap, self._at
        while heap and at.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: datetime, limit: int) -> list[str]:
        """Up to `limit` IMSIs due at `now`, earliest first, taken off the schedule (the
        caller sets their next instant)."""
        out: list[str] = []
        while len(out) < limit:
            due = self.next()
            if due is None or due > now:
                break
            _, imsi = heapq.heappop(self._heap)
            del self._at[imsi]
            out.append(imsi)
        return out


class AttachState:
    """The snapshot's attach part: compiled policies of the orgs with attach rules (by
    org id), their SIMs' classes (by IMSI) and the schedule of those classes' `until`.
    Patched in place under the core's lock, as the rest of the snapshot is."""

    def __init__(
        self,
        policies: Mapping[str, CompiledPolicy] | None = None,
        classes: Mapping[str, AttachClass] | None = None,
    ) -> None:
        self.policies: dict[str, CompiledPolicy] = dict(policies or {})
        self.classes: dict[str, AttachClass] = dict(classes or {})
        self.due = Deadlines()
        for imsi, entry in self.classes.items():
            self.due.set(imsi, entry.until)

    def patch(
        self,
        policies: Mapping[str, CompiledPolicy | None],
        classes: Mapping[str, AttachClass | None],
    ) -> None:
        # Policies first: a class is only ever read with the policy it was made under.
        for org_id, policy in policies.items():
            if policy is None:
                self.policies.pop(org_id, None)
            else:
                self.policies[org_id] = policy
        for imsi, entry in classes.items():
            if entry is None:
                self.classes.pop(imsi, None)
                self.due.set(imsi, None)
            else:
                self.classes[imsi] = entry
                self.due.set(imsi, entry.until)

    def reclassify_due(self, now: datetime, limit: int) -> list[str]:
        """Re-classify, in place, up to `limit` SIMs whose class stood only until `now` or
        earlier; the IMSIs whose class changed."""
        changed = []
        for imsi in self.due.pop_due(now, limit):
            entry = self.classes.get(imsi)
            if entry is None or entry.subject is None:
                continue
            fresh = classify(entry.policy, entry.subject, now)
            self.classes[imsi] = fresh
            self.due.set(imsi, fresh.until)
            if fresh.class_id != entry.class_id:
                changed.append(imsi)
        return changed
