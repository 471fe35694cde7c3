"""The net audit's flow events between the packet that made them and their commit: kept
in memory with the time their packet was seen, written in batches, and given up past a
bound only with a count.

`FlowAudit` (`serve.audit`) keeps each event as it is made and, once a second, takes
everything kept and writes it in one transaction. While the database is down the events
are kept, at most `max_pending`; past that the oldest are given up, counted per org, and
each org gets one `net.flow_events_dropped` event in the first commit that succeeds. A
batch whose commit failed goes back in front of the events kept meanwhile, bounded
again. Nothing is dropped without a count.

Not thread-safe: the audit calls `keep`, `take` and `put_back` under its own lock (the one
that orders its logs), and `write` outside it.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from ztsim.events.schema import NewEvent, Outcome, subject_of
from ztsim.net.denials import ACTOR
from ztsim.net.store.flow_events import append_flow_events

DROPPED_KIND = "net.flow_events_dropped"
# Events kept while the database is down: well under 1 KB each, so under 100 MB; the
# kernel's log limit (200/s) fills it in no less than 8 minutes.
MAX_PENDING = 100_000

Timed = tuple[NewEvent, datetime]  # an event and the time its packet was seen


@dataclass(frozen=True)
class Batch:
    """What one flush takes: the events, and the events given up per org since the last
    commit (each org's count becomes one report)."""

    events: list[Timed]
    dropped: Counter[str]


class FlowWriter:
    """The events waiting to be written, at most `max_pending`."""

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self._pending: deque[Timed] = deque()
        self._max_pending = max_pending
        self._dropped: Counter[str] = Counter()  # org -> events given up, not yet reported
        self.counts: Counter[str] = Counter()  # stored, dropped

    def __len__(self) -> int:
        return len(self._pending)

    def keep(self, items: Iterable[Timed]) -> None:
        """Appended to the pending events; past the bound the oldest are given up."""
        for item in items:
            if len(self._pending) >= self._max_pending:
                gone, _ = self._pending.popleft()
                self._dropped[gone.org_id] += 1
                self.counts["dropped"] += 1
            self._pending.append(item)

    def take(self) -> Batch:
        """Everything waiting, and the counts given up: this writer is empty after."""
        batch = Batch(list(self._pending), self._dropped)
        self._pending, self._dropped = deque(), Counter()
        return batch

    def put_back(self, batch: Batch) -> None:
        """A batch whose commit failed, back in front of what came meanwhile (bounded
        again: the oldest go first)."""
        later, self._pending = self._pending, deque()
        self._dropped.update(batch.dropped)
        self.keep(batch.events)
        self.keep(later)

    def write(self, engine: Engine, batch: Batch, now: datetime) -> int:
        """Commit `batch` in one transaction, with a report per org of the events given up
        (at `now`); how many events were written. Raises if the commit fails: the caller
        puts the batch back."""
        reports = [(_dropped_event(org, n), now) for org, n in sorted(batch.dropped.items())]
        if not batch.events and not reports:
            return 0
        with engine.begin() as conn:
            written = append_flow_events(conn, batch.events + reports)
        self.counts["stored"] += len(batch.events)
        return written


def _dropped_event(org_id: str, count: int) -> NewEvent:
    return NewEvent(
        org_id,
        DROPPED_KIND,
        ACTOR,
        subject_of("org", org_id),
        Outcome.FAILURE,
        "database unavailable",
        {"count": count},
    )
