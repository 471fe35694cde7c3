"""The automatic response to a finding, in one use case with its record: the finding is
written once, then the org's chosen response is applied and told (`risk.finding`).

- alert: the event only.
- restrict: `sims.clone_suspected_at` is set and a SIM change published, so every plane
  re-reads the SIM's facts (`sim.clone_suspected`) and the org's rules restrict it: the
  AAA re-classifies the SIM and cuts a session its attach rules now refuse.
- suspend: the SIM is suspended through the inventory's use case, whose SIM change makes
  the AAA send Disconnect-Requests for its live sessions and the DNS gateway refuse it.

A SIM no longer active (suspended, retired, or never activated) is not suspended again:
the finding is recorded and told, nothing more. A finding recorded already (the same
detector, the same source event) changes nothing: `respond` returns None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, select, update

from ztsim.db import schema
from ztsim.errors import NotFound
from ztsim.events.schema import subject_of
from ztsim.feed.change import Topic
from ztsim.inventory import repository as inventory
from ztsim.inventory import service as lifecycle
from ztsim.inventory.lifecycle import SimAction, SimState
from ztsim.risk.detectors import Finding
from ztsim.risk.settings import Detector, Response
from ztsim.risk.store import findings
from ztsim.usecase import UseCase, use_case

_s = schema.sims
FINDING_EVENT = "risk.finding"
CLEARED_EVENT = "risk.suspicion_cleared"


class Outcome(StrEnum):
    ALERTED = "alerted"  # told only (the org's choice)
    RESTRICTED = "restricted"  # the SIM now carries `sim.clone_suspected`
    SUSPENDED = "suspended"  # the SIM was active and is now suspended
    UNCHANGED = "unchanged"  # restrict or suspend found nothing left to do
    UNKNOWN_SIM = "unknown_sim"  # the SIM is not the org's (any more): recorded only


@dataclass(frozen=True, slots=True)
class Applied:
    finding_id: int
    detector: Detector
    iccid: str
    response: Response
    outcome: Outcome


def actor_of(detector: Detector) -> str:
    return f"risk:{detector.value}"


def respond(
    conn: Connection, finding: Finding, response: Response, *, now: datetime
) -> Applied | None:
    """Record `finding` and apply `response` (the org's choice for its detector), in the
    caller's transaction; None when the finding was recorded before (nothing done)."""
    with use_case(conn, now) as uc:
        # Recorded first: a finding read twice is acted on once.
        finding_id = findings.insert_once(conn, finding, response, finding.detail)
        if finding_id is None:
            return None
        sim = _sim_state(conn, finding.org_id, finding.iccid)
        outcome = _apply(uc, finding, response, sim)
        findings.set_detail(conn, finding_id, {**finding.detail, "outcome": outcome.value})
        uc.audit(
            finding.org_id,
            FINDING_EVENT,
            actor_of(finding.detector),
            subject_of("sim", finding.iccid),
            finding_id=finding_id,
            detector=finding.detector.value,
            source_event_id=finding.source_event_id,
            response=response.value,
            outcome=outcome.value,
            detail=dict(finding.detail),
        )
        return Applied(finding_id, finding.detector, finding.iccid, response, outcome)


def _sim_state(conn: Connection, org_id: str, iccid: str) -> SimState | None:
    try:
        return inventory.get_sim(conn, org_id, iccid).state
    except NotFound:
        return None


def _apply(uc: UseCase, finding: Finding, response: Response, state: SimState | None) -> Outcome:
    conn, now = uc.conn, uc.now
    if state is None:
        return Outcome.UNKNOWN_SIM
    if response is Response.ALERT:
        return Outcome.ALERTED
    if response is Response.RESTRICT:
        marked = conn.execute(
            update(_s)
            .where(
                _s.c.org_id == finding.org_id,
                _s.c.iccid == finding.iccid,
                _s.c.clone_suspected_at.is_(None),
            )
            .values(clone_suspected_at=now, updated_at=now)
        ).rowcount
        if not marked:
            return Outcome.UNCHANGED
        # The SIM's facts changed: the AAA and the DNS gateway re-read them by ICCID.
        uc.change(finding.org_id, Topic.SIM, finding.iccid, {"clone_suspected": True})
        return Outcome.RESTRICTED
    if state is not SimState.ACTIVE:
        return Outcome.UNCHANGED
    lifecycle.change_state(
        conn,
        finding.org_id,
        finding.iccid,
        SimAction.SUSPEND,
        actor=actor_of(finding.detector),
        reason=f"automatic response to a {finding.detector.value} finding",
        now=now,
    )
    return Outcome.SUSPENDED


def clear_suspicion(
    conn: Connection, org_id: str, iccid: str, *, actor: str, now: datetime
) -> bool:
    """An admin lifts `sim.clone_suspected` (the SIM stays in its state: a suspended SIM
    is resumed through the inventory); whether it was set. `NotFound` for another org's
    SIM."""
    with use_case(conn, now) as uc:
        row = conn.execute(
            select(_s.c.clone_suspected_at).where(_s.c.org_id == org_id, _s.c.iccid == iccid)
        ).first()
        if row is None:
            raise NotFound("SIM not found")
        if row[0] is None:
            return False
        conn.execute(
            update(_s)
            .where(_s.c.org_id == org_id, _s.c.iccid == iccid)
            .values(clone_suspected_at=None, updated_at=now)
        )
        uc.audit(org_id, CLEARED_EVENT, actor, subject_of("sim", iccid), since=row[0].isoformat())
        uc.change(org_id, Topic.SIM, iccid, {"clone_suspected": False})
        return True
