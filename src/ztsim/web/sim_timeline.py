"""A SIM's timeline: the org's events about it, newest first, in words a person reads.

The events are the ones every plane writes about the subject `sim:<ICCID>` (attaches
accepted and refused, sessions, disconnects, lifecycle changes, binding, swaps), plus
those the AAA writes about its IMSI before it knew the SIM (`imsi:<IMSI>`). Details are
taken from a few payload fields known to be plain facts; nothing else of a payload is
shown, so no field added later can put a secret on a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from ztsim.events import store as events
from ztsim.events.schema import Event, Outcome, subject_of

PAGE_SIZE = 100

# Event kinds as the planes write them; any other kind is shown by its name.
_WORDS = {
    "radius.session_started": "Session started",
    "radius.session_stopped": "Session ended",
    "radius.disconnect": "Disconnect-Request to the gateway",
    "radius.accounting_refused": "Accounting refused",
    "sim.assign": "Assigned",
    "sim.activate": "Activated",
    "sim.suspend": "Suspended",
    "sim.resume": "Resumed",
    "sim.retire": "Retired",
    "sim.binding_changed": "Device binding changed",
    "sim.number_moved": "Number moved to this SIM",
    "sim.swap": "SIM swapped",
    "sim.replaced": "SIM replaced",
    "risk.clone": "Clone suspected",
    "risk.device_swap": "Attach from another device",
    "risk.swap_requested": "Swap requested",
    "risk.swap_approved": "Swap approved",
    "risk.swap_rejected": "Swap rejected",
    "risk.finding": "Risk finding",
    "risk.suspicion_cleared": "Suspicion cleared",
    "aka.refused": "Authentication vectors refused",
}
# Payload fields shown, in this order, with their label.
_DETAILS = (
    ("from", "from"),
    ("to", "to"),
    ("ue_address", "address"),
    ("apn", "APN"),
    ("imei", "IMEI"),
    ("result", "result"),
    ("attempts", "attempts"),
    ("policy_rule", "rule"),
)


@dataclass(frozen=True, slots=True)
class Moment:
    time: datetime
    kind: str
    what: str
    outcome: str
    reason: str
    actor: str
    details: str


def words(event: Event) -> str:
    if event.kind == "radius.access":
        return "Attach accepted" if event.outcome is Outcome.SUCCESS else "Attach refused"
    return _WORDS.get(event.kind, event.kind)


def details(event: Event) -> str:
    shown = []
    for key, label in _DETAILS:
        value = event.payload.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
            shown.append(f"{label} {value}")
    return ", ".join(shown)


def moment(event: Event) -> Moment:
    return Moment(
        event.time,
        event.kind,
        words(event),
        event.outcome.value,
        event.reason,
        event.actor,
        details(event),
    )


def read(
    conn: Connection, org_id: str, iccid: str, imsi: str, *, cursor: str | None = None
) -> tuple[list[Moment], str | None]:
    """A page of the SIM's timeline, newest first; the cursor continues to older events."""
    subjects = [subject_of("sim", iccid), subject_of("imsi", imsi)]
    found, next_cursor = events.query(
        conn, org_id, events.EventQuery(subjects_in=subjects), limit=PAGE_SIZE, cursor=cursor
    )
    return [moment(e) for e in found], next_cursor
