"""The overview's recent risk events: what the detectors found and how the org answered,
clones and swapped devices the AAA refused, and SIM swaps asked for and decided; the
newest `SHOWN`, read from the event log like the API's `/events` (`events:read`).

Each kind is read newest first on its own (the log's index on org, kind and id answers
it without a scan) and the pages are merged: a handful of short reads, however long the
log.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from sqlalchemy import Connection

from ztsim.events import store as events
from ztsim.events.schema import Event

SHOWN = 10

# What each kind is, in words; the keys are the kinds the risk context and the AAA write.
KINDS: dict[str, str] = {
    "risk.finding": "Detector finding",
    "risk.clone": "Cloned SIM refused",
    "risk.device_swap": "Device swap refused",
    "risk.swap_requested": "SIM swap requested",
    "risk.swap_approved": "SIM swap approved",
    "risk.swap_rejected": "SIM swap rejected",
    "risk.swap_failed": "SIM swap failed",
    "risk.suspicion_cleared": "Clone suspicion lifted",
}


@dataclass(frozen=True, slots=True)
class RiskEvent:
    event: Event
    what: str  # the kind in words

    @property
    def detail(self) -> str:
        """The reason, or for a finding its detector and what was done about it."""
        p = self.event.payload
        if self.event.kind == "risk.finding":
            return f"{p.get('detector', '?')}: {p.get('outcome', p.get('response', '?'))}"
        return self.event.reason


def newest(conn: Connection, org_id: str, limit: int = SHOWN) -> list[RiskEvent]:
    pages = [
        events.query(conn, org_id, events.EventQuery(kind=kind), limit=limit)[0] for kind in KINDS
    ]
    merged = heapq.merge(*pages, key=lambda e: e.id, reverse=True)
    return [RiskEvent(e, KINDS[e.kind]) for _, e in zip(range(limit), merged, strict=False)]
