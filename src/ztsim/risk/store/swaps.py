"""Swaps under the two-person rule, in `swap_requests`: an eSIM re-issue or a physical SIM
replacement runs at once when the org does not ask for approval, and otherwise waits as a
pending request until a second person approves (the swap runs then, in the same
transaction as the approval) or rejects it. Every step is an event on the old SIM.

A request checks what it can when it is made (the order or SIM exists and could be
swapped), so a request that could never succeed is refused at once; what changes while it
waits (the order cancelled, the spare SIM used) makes the approval fail: the request
becomes `failed` with the error's message, and no swap is made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from ztsim.clock import new_id
from ztsim.errors import Conflict, InvalidInput, NotFound, ZtsimError
from ztsim.esim import repository as orders
from ztsim.esim import service as esim
from ztsim.esim.config import EsimConfig
from ztsim.esim.orders import on_reissue
from ztsim.events.schema import NewEvent, Outcome, subject_of
from ztsim.identifiers import Eid, Iccid, InvalidIdentifier
from ztsim.inventory import repository as inventory
from ztsim.inventory.lifecycle import SimState
from ztsim.inventory.models import Sim
from ztsim.inventory.replacement import replace_sim
from ztsim.risk.approvals import (
    Decision,
    RequestState,
    SwapKind,
    SwapRequest,
    check_decision,
    decided,
    new_request,
    outcome_of,
)
from ztsim.risk.store import second_person
from ztsim.risk.store import swap_requests as table
from ztsim.risk.store.settings import get_settings
from ztsim.risk.store.swap_requests import get_request as get_request
from ztsim.risk.store.swap_requests import list_requests as list_requests
from ztsim.sealing import Sealer
from ztsim.usecase import use_case

Random = Callable[[int], bytes]


@dataclass(frozen=True)
class SwapTools:
    """What running an eSIM re-issue needs besides the database (the API's context, the
    CLI's platform hold them)."""

    sealer: Sealer
    esim: EsimConfig
    rand: Random


def _old_iccid(conn: Connection, request: SwapRequest) -> str:
    if request.kind is SwapKind.SIM_REPLACE:
        return request.target
    return orders.get_order(conn, request.org_id, request.target).iccid


def _event(
    conn: Connection, request: SwapRequest, kind: str, actor: str, **extra: object
) -> NewEvent:
    outcome = Outcome.FAILURE if request.state is RequestState.FAILED else Outcome.SUCCESS
    payload: dict[str, Any] = {
        "request_id": request.id,
        "swap": request.kind.value,
        "target": request.target,
        "requester": request.requester,  # the person; the approver's is the actor
        **{k: v for k, v in request.params.items() if k != "reason"},
        **extra,
    }
    # About the SIM the swap would take the number from: its history shows every step.
    subject = subject_of("sim", _old_iccid(conn, request))
    return NewEvent(request.org_id, kind, actor, subject, outcome, request.reason, payload)


def _pending(
    conn: Connection,
    org_id: str,
    kind: SwapKind,
    target: str,
    params: Mapping[str, Any],
    *,
    actor: str,
    requester: str,
    now: datetime,
) -> SwapRequest:
    with use_case(conn, now) as uc:
        request = new_request(
            new_id(), org_id, kind, target, params, actor=actor, requester=requester, now=now
        )
        table.insert_request(conn, request)
        uc.event(
            _event(
                conn,
                request,
                "risk.swap_requested",
                actor,
                expires_at=request.expires_at.isoformat(),
            )
        )
        return request


def _check_reason(reason: str) -> str:
    if not reason.strip():
        raise InvalidInput("a reason is required for a swap")
    return reason


def request_reissue(
    conn: Connection,
    tools: SwapTools,
    org_id: str,
    order_id: str,
    *,
    actor: str,
    requester: str,
    reason: str,
    now: datetime,
    eid: str | None = None,
) -> SwapRequest | esim.Issued:
    """Re-issue eSIM order `order_id` now (the new order, its code shown once), or, when
    the org requires approval, a pending request (nothing changes until it is approved)."""
    with use_case(conn, now):
        if not get_settings(conn, org_id).approval_required:
            return esim.reissue_order(
                conn,
                tools.sealer,
                org_id,
                order_id,
                config=tools.esim,
                actor=actor,
                reason=reason,
                now=now,
                rand=tools.rand,
                eid=eid,
            )
        _check_reason(reason)
        if eid is not None:
            eid = Eid(eid).value
        order = orders.get_order(conn, org_id, order_id)
        on_reissue(order.state, order.expires_at, now)  # refuses an order never re-issuable
        params = {"reason": reason, "eid": eid}
        return _pending(
            conn,
            org_id,
            SwapKind.ESIM_REISSUE,
            order.id,
            params,
            actor=actor,
            requester=requester,
            now=now,
        )


def request_replace(
    conn: Connection,
    org_id: str,
    iccid: str,
    new_iccid: str,
    *,
    actor: str,
    requester: str,
    reason: str,
    now: datetime,
) -> SwapRequest | Sim:
    """Replace SIM `iccid` with stock SIM `new_iccid` now (the new SIM), or, when the org
    requires approval, a pending request (the old SIM keeps working until approval)."""
    with use_case(conn, now):
        if not get_settings(conn, org_id).approval_required:
            return replace_sim(conn, org_id, iccid, new_iccid, actor=actor, reason=reason, now=now)
        _check_reason(reason)
        old = inventory.get_sim(conn, org_id, iccid)
        try:
            spare = inventory.get_sim(conn, org_id, Iccid(new_iccid).value)
        except InvalidIdentifier as exc:
            raise InvalidInput(f"new_iccid: {exc}") from None
        except NotFound:
            raise NotFound("replacement SIM not found") from None
        if old.identity_id is None or old.state is SimState.RETIRED:
            raise Conflict(f"a SIM that is {old.state.value} cannot be replaced")
        if spare.state is not SimState.STOCK or spare.iccid == old.iccid:
            raise Conflict("the replacement must be another SIM in stock")
        params = {"reason": reason, "new_iccid": spare.iccid}
        return _pending(
            conn,
            org_id,
            SwapKind.SIM_REPLACE,
            old.iccid,
            params,
            actor=actor,
            requester=requester,
            now=now,
        )


def _run(conn: Connection, tools: SwapTools, request: SwapRequest, actor: str) -> dict[str, Any]:
    """Make the swap a request asked for; what it did, without secrets (no codes)."""
    now = request.decided_at
    assert now is not None
    if request.kind is SwapKind.SIM_REPLACE:
        new_iccid = str(request.params["new_iccid"])
        sim = replace_sim(
            conn,
            request.org_id,
            request.target,
            new_iccid,
            actor=actor,
            reason=request.reason,
            now=now,
        )
        return {"old_iccid": request.target, "new_iccid": sim.iccid}
    old = orders.get_order(conn, request.org_id, request.target)
    eid = request.params.get("eid")
    issued = esim.reissue_order(
        conn,
        tools.sealer,
        request.org_id,
        request.target,
        config=tools.esim,
        actor=actor,
        reason=request.reason,
        now=now,
        rand=tools.rand,
        eid=None if eid is None else str(eid),
    )
    return {
        "old_iccid": old.iccid,
        "new_iccid": issued.order.iccid,
        "new_order_id": issued.order.id,
    }


def approve(
    conn: Connection,
    tools: SwapTools,
    org_id: str,
    request_id: str,
    *,
    actor: str,
    decider: str,
    now: datetime,
) -> SwapRequest:
    """Approve a pending request and make its swap in the same transaction. A swap refused
    now leaves the request `failed` (its `result` holds the error) and changes nothing
    else: the caller commits and reports the failure."""
    with use_case(conn, now) as uc:
        request = table.locked(conn, org_id, request_id)
        check_decision(request, Decision.APPROVE, decider, now)
        second_person.check(conn, org_id, request, actor)
        approved = decided(request, RequestState.APPROVED, actor=actor, now=now)
        try:
            with conn.begin_nested():
                result = _run(conn, tools, approved, actor)
        except ZtsimError as exc:
            failed = decided(
                request, RequestState.FAILED, actor=actor, now=now, result={"error": str(exc)}
            )
            table.save(conn, failed)
            uc.event(_event(conn, failed, "risk.swap_failed", actor, error=str(exc)))
            return failed
        done = decided(request, RequestState.APPROVED, actor=actor, now=now, result=result)
        table.save(conn, done)
        uc.event(_event(conn, done, "risk.swap_approved", actor, **result))
        return done


def reject(
    conn: Connection,
    org_id: str,
    request_id: str,
    *,
    actor: str,
    decider: str,
    reason: str,
    now: datetime,
) -> SwapRequest:
    """Reject a pending request (its requester may withdraw it so); nothing else changes."""
    with use_case(conn, now) as uc:
        request = table.locked(conn, org_id, request_id)
        check_decision(request, Decision.REJECT, decider, now)
        done = decided(
            request, outcome_of(Decision.REJECT), actor=actor, now=now, result={"reason": reason}
        )
        table.save(conn, done)
        uc.event(_event(conn, done, "risk.swap_rejected", actor, rejection=reason))
        return done
