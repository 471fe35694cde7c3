"""Query logging with a per-org privacy filter, batched off the hot path.

`QueryLog.record` is called for every answered query: it applies the org's mode
(`blocked-only`: only blocked queries; `all`; `none`: nothing), replaces the
identity by a keyed pseudonym if the org asks for it, and appends an event to
an in-memory batch. `drain` hands the batch to a writer (the gateway's
background task stores it with `ztsim.events.store.append`).

Besides the per-query events, `stats()` gives one `dns.stats` event per org with
the counts since the last call (queries, blocked): aggregates that name no one,
so they are kept in `blocked-only` mode too, and dropped in `none`.

Nothing is dropped silently: an event pushed out of a full batch (a stalled writer), or
given up by the writer while the database is down (`overflowed`), is counted per org,
and `drop_reports` turns the counts into one `dns.events_dropped` event per org for the
writer's next successful commit (`give_back` returns them when that commit fails).

An event's subject is `identity:<id>` (else `device:<id>`), so GET /api/v1/events
with a `self` token lists exactly the DNS events about its holder. A
pseudonymised event has subject `pseudonym:<hmac>` and no identity or device
in its payload.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import deque
from datetime import datetime

from ztsim.dns.policy.identity import Requester
from ztsim.dns.policy.rules import Action, PrivacyMode
from ztsim.dns.policy.snapshot import Decision, PolicySnapshot
from ztsim.events.schema import NewEvent, Outcome, subject_of

EVENT_KIND = "dns.query"
STATS_KIND = "dns.stats"
DROPPED_KIND = "dns.events_dropped"
ACTOR = "dns-gateway"
DEFAULT_MAX_PENDING = 100_000  # a stalled writer drops the oldest events, never blocks queries
_ACTIONS = {Action.ALLOW: "allowed", Action.BLOCK: "blocked", Action.OVERRIDE: "overridden"}


def pseudonym(key: bytes, org_id: str, real_subject: str) -> str:
    """A stable keyed pseudonym: linkable within the org, not reversible without `key`."""
    digest = hmac.new(key, f"{org_id}\0{real_subject}".encode(), hashlib.sha256).hexdigest()
    return subject_of("pseudonym", digest[:24])


def _real_subject(who: Requester) -> str:
    if who.identity_id is not None:
        return subject_of("identity", who.identity_id)
    if who.device_id is not None:
        return subject_of("device", who.device_id)
    return subject_of("org", who.org_id)


class QueryLog:
    """Privacy filter and batch. `policy` is swapped by the gateway like its other snapshots."""

    def __init__(
        self, policy: PolicySnapshot, pseudonym_key: bytes, max_pending: int = DEFAULT_MAX_PENDING
    ) -> None:
        self.policy = policy
        self._key = pseudonym_key
        self._pending: deque[NewEvent] = deque(maxlen=max_pending)
        self._counts: dict[str, list[int]] = {}  # org -> [queries, blocked]
        self.max_pending = max_pending
        self.dropped = 0
        self._dropped: dict[str, int] = {}  # org -> events dropped, not yet reported
        # Serving threads count drops while the writer takes the counts: rare, so locked.
        self._drop_lock = threading.Lock()

    def record(self, who: Requester, qname: str, qtype: int, decision: Decision) -> None:
        settings = self.policy.settings(who.org_id)
        mode = settings.privacy
        if mode is PrivacyMode.NONE:
            return
        blocked = decision.action is Action.BLOCK
        counts = self._counts.setdefault(who.org_id, [0, 0])
        counts[0] += 1
        counts[1] += blocked
        if mode is PrivacyMode.BLOCKED_ONLY and not blocked:
            return
        payload: dict[str, object] = {
            "name": qname,
            "qtype": qtype,
            "action": _ACTIONS.get(decision.action, str(decision.action)),
            "rule": decision.rule_id,
            # Reason codes (`ztsim.policy.reasons`): the rule, and the posture or SIM
            # states that made it apply, so a person denied learns which check denied them.
            "reasons": list(decision.reasons),
        }
        if settings.pseudonymise:
            subject = pseudonym(self._key, who.org_id, _real_subject(who))
        else:
            subject = _real_subject(who)
            if who.device_id is not None:
                payload["device_id"] = who.device_id
        pending = self._pending
        if len(pending) == pending.maxlen:
            # The oldest goes: counted for its own org, not this one.
            self._count_dropped(pending[0].org_id if pending else who.org_id)
        pending.append(
            NewEvent(
                org_id=who.org_id,
                kind=EVENT_KIND,
                actor=ACTOR,
                subject=subject,
                outcome=Outcome.DENIED if blocked else Outcome.SUCCESS,
                reason=decision.ede_text if blocked else "",
                payload=payload,
            )
        )

    def stats(self) -> list[NewEvent]:
        """One aggregate event per org with the counts since the last call."""
        counts, self._counts = self._counts, {}
        return [
            NewEvent(
                org_id=org_id,
                kind=STATS_KIND,
                actor=ACTOR,
                subject=subject_of("org", org_id),
                payload={"queries": queries, "blocked": blocked},
            )
            for org_id, (queries, blocked) in counts.items()
        ]

    def _count_dropped(self, org_id: str, count: int = 1) -> None:
        with self._drop_lock:
            self.dropped += count
            self._dropped[org_id] = self._dropped.get(org_id, 0) + count

    def overflowed(self, events: list[NewEvent]) -> None:
        """Events the writer gives up (past its bound while the database is down): counted."""
        for event in events:
            self._count_dropped(event.org_id)

    def drop_reports(self) -> list[NewEvent]:
        """One event per org with the events dropped since the last reports were taken."""
        with self._drop_lock:
            dropped, self._dropped = self._dropped, {}
        return [
            NewEvent(
                org_id=org_id,
                kind=DROPPED_KIND,
                actor=ACTOR,
                subject=subject_of("org", org_id),
                outcome=Outcome.FAILURE,
                reason="backlog_full",
                payload={"dropped": count},
            )
            for org_id, count in dropped.items()
        ]

    def give_back(self, reports: list[NewEvent]) -> None:
        """Reports that could not be written: counted again for the next try."""
        with self._drop_lock:
            for report in reports:
                count = int(report.payload["dropped"])
                self._dropped[report.org_id] = self._dropped.get(report.org_id, 0) + count

    def drain(self) -> list[NewEvent]:
        """Everything recorded since the last drain, oldest first.

        Taken one by one: the serving threads append meanwhile, and a copy followed by
        a clear would lose what came in between.
        """
        pending = self._pending
        return [pending.popleft() for _ in range(len(pending))]

    def __len__(self) -> int:
        return len(self._pending)


class Backlog:
    """What the writer could not store (the database is down), oldest first, each batch
    with the time it was taken, for the next try; at most `bound` events: past it the
    oldest are given up and counted in `querylog` (`overflowed`), never dropped silently.
    Used by the writer alone."""

    def __init__(self, querylog: QueryLog, bound: int) -> None:
        self._querylog = querylog
        self._bound = bound
        self._batches: deque[tuple[datetime, list[NewEvent]]] = deque()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def keep(self, batches: list[tuple[datetime, list[NewEvent]]]) -> None:
        """`batches` (oldest first) were not written: kept, before anything kept later."""
        for when, events in reversed(batches):
            self._batches.appendleft((when, events))
            self._count += len(events)
        while self._count > self._bound:
            when, events = self._batches.popleft()
            excess = self._count - self._bound
            gone, rest = events[:excess], events[excess:]
            self._querylog.overflowed(gone)
            self._count -= len(gone)
            if rest:
                self._batches.appendleft((when, rest))

    def take(self) -> list[tuple[datetime, list[NewEvent]]]:
        batches, self._batches, self._count = list(self._batches), deque(), 0
        return batches
