"""Query logging with a per-org privacy filter, batched off the hot path.

`QueryLog.record` is called for every answered query: it applies the org's mode
(`blocked-only`: only blocked queries; `all`; `none`: nothing), replaces the
identity by a keyed pseudonym if the org asks for it, and appends an event to
an in-memory batch. `drain` hands the batch to a writer (the gateway's
background task stores it with `ztsim.events.store.append`).

Besides the per-query events, `stats()` gives one `dns.stats` event per org with
the counts since the last call (queries, blocked): aggregates that name no one,
so they are kept in `blocked-only` mode too, and dropped in `none`.

An event's subject is `identity:<id>` (else `device:<id>`), so GET /api/v1/events
with a `self` token lists exactly the DNS events about its holder. A
pseudonymised event has subject `pseudonym:<hmac>` and no identity or device
in its payload.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import deque

from ztsim.dns.policy.identity import Requester
from ztsim.dns.policy.rules import Action, PrivacyMode
from ztsim.dns.policy.snapshot import Decision, PolicySnapshot
from ztsim.events.schema import NewEvent, Outcome, subject_of

EVENT_KIND = "dns.query"
STATS_KIND = "dns.stats"
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
        self.dropped = 0

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
        }
        if settings.pseudonymise:
            subject = pseudonym(self._key, who.org_id, _real_subject(who))
        else:
            subject = _real_subject(who)
            if who.device_id is not None:
                payload["device_id"] = who.device_id
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
        self._pending.append(
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

    def drain(self) -> list[NewEvent]:
        """Everything recorded since the last drain, oldest first.

        Taken one by one: the serving threads append meanwhile, and a copy followed by
        a clear would lose what came in between.
        """
        pending = self._pending
        return [pending.popleft() for _ in range(len(pending))]

    def __len__(self) -> int:
        return len(self._pending)
