"""Physical SIM replacement: a new card (a new IMSI and keys) for a subscriber who keeps
their number, after a card is damaged, lost or stolen.

One use case: the new SIM is assigned to the old one's identity and brought to the old
one's state, the number moves to it, the old SIM is retired, the new one is marked
swapped (`sim.swap_age`, `sim.swap_recent`). The state changes go through
`service.change_state`, which publishes each SIM change; `sim.replaced` tells the story.

A suspended SIM's replacement is suspended too: a suspension is someone's decision (an
admin's, or a risk response's) to cut a subscriber off, and issuing a new card must not
undo it behind their back. Resuming stays a deliberate act of its own."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.events.schema import NewEvent, subject_of
from ztsim.identifiers import Iccid, InvalidIdentifier
from ztsim.inventory import repository as repo
from ztsim.inventory import service
from ztsim.inventory.lifecycle import SimAction, SimState
from ztsim.inventory.models import Sim, SimKind
from ztsim.usecase import use_case

# The states of a SIM that serves someone: only those have a subscriber to carry over.
_REPLACEABLE = frozenset({SimState.ASSIGNED, SimState.ACTIVE, SimState.SUSPENDED})


def _replacement(conn: Connection, org_id: str, new_iccid: str) -> Sim:
    try:
        checked = Iccid(new_iccid).value
    except InvalidIdentifier as exc:
        raise InvalidInput(f"new_iccid: {exc}") from None
    try:
        sim = repo.get_sim(conn, org_id, checked)
    except NotFound:
        raise NotFound("replacement SIM not found") from None
    if sim.kind is not SimKind.PHYSICAL:
        raise Conflict("the replacement must be a physical SIM (an eSIM is re-issued instead)")
    if sim.state is not SimState.STOCK:
        raise Conflict(f"the replacement SIM is {sim.state.value}: it must be in stock")
    return sim


def replace_sim(
    conn: Connection,
    org_id: str,
    iccid: str,
    new_iccid: str,
    *,
    actor: str,
    reason: str,
    now: datetime,
) -> Sim:
    """Replace SIM `iccid` (assigned, active or suspended) with physical SIM `new_iccid`
    from this org's stock; returns the new SIM. Refused (nothing changed): a blank
    reason (InvalidInput), either SIM not in this org (NotFound), the old SIM not
    serving anyone, the new one not a physical SIM in stock, the identity disabled
    (Conflict)."""
    if not reason.strip():
        raise InvalidInput("a reason is required to replace a SIM")
    with use_case(conn, now) as uc:
        old = repo.get_sim(conn, org_id, iccid)
        if old.state not in _REPLACEABLE or old.identity_id is None:
            raise Conflict(f"a SIM that is {old.state.value} cannot be replaced")
        new = _replacement(conn, org_id, new_iccid)
        if new.iccid == old.iccid:
            raise Conflict("a SIM cannot replace itself")
        why = f"replaces SIM {old.iccid}: {reason}"
        steps: list[tuple[SimAction, str | None, str]] = [(SimAction.ASSIGN, old.identity_id, why)]
        if old.state in (SimState.ACTIVE, SimState.SUSPENDED):
            steps.append((SimAction.ACTIVATE, None, why))
        if old.state is SimState.SUSPENDED:
            steps.append(
                (SimAction.SUSPEND, None, f"SIM {old.iccid}, which it replaces, is suspended")
            )
        for action, holder, step_reason in steps:
            service.change_state(
                conn,
                org_id,
                new.iccid,
                action,
                actor=actor,
                reason=step_reason,
                now=now,
                identity_id=holder,
            )
        msisdn = service.move_number(conn, org_id, old.iccid, new.iccid, actor=actor, now=now)
        service.change_state(
            conn, org_id, old.iccid, SimAction.RETIRE, actor=actor, reason=reason, now=now
        )
        repo.mark_swapped(conn, org_id, new.iccid, now)
        uc.event(
            # About the SIM now in service, as `sim.swap` of an eSIM re-issue.
            NewEvent(
                org_id,
                "sim.replaced",
                actor,
                subject_of("sim", new.iccid),
                reason=reason,
                payload={
                    "old_iccid": old.iccid,
                    "new_iccid": new.iccid,
                    "identity_id": old.identity_id,
                    "msisdn": msisdn,
                    "state": old.state.value,  # the new SIM's, carried over
                },
            )
        )
        return repo.get_sim(conn, org_id, new.iccid)
