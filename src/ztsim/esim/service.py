"""eSIM order use cases. Each checks its rules, changes the database and records its
events in the caller's transaction, so a refused operation changes nothing. SIM state
and binding changes go through `ztsim.inventory.service`, which owns the SIM lifecycle
and publishes each SIM change; each use case here is one `use_case`, so those changes
are published once, at its end (a re-issue retires one SIM and assigns another).

The matching ID and the confirmation code leave this module only in return values meant
for the one response (or pack) that shows them; events carry neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from ztsim.clock import new_id
from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.esim import repository as repo
from ztsim.esim.activation import ActivationCode
from ztsim.esim.codes import (
    Random,
    confirmation_hash,
    matching_id_hash,
    new_confirmation_code,
    new_matching_id,
)
from ztsim.esim.config import EsimConfig
from ztsim.esim.orders import (
    NotificationPoint,
    OrderRefused,
    OrderState,
    ProgressStatus,
    effective_state,
    on_cancel,
    on_progress,
    on_reissue,
)
from ztsim.esim.pack import PackPage
from ztsim.esim.privacy import DnsLogging, dns_privacy_paragraph
from ztsim.events.schema import NewEvent, Outcome, subject_of
from ztsim.identifiers import Eid, Iccid, InvalidIdentifier
from ztsim.identity import repository as identities
from ztsim.inventory import repository as inventory
from ztsim.inventory import service as sims
from ztsim.inventory.lifecycle import SimAction, SimState
from ztsim.inventory.models import SimKind
from ztsim.sealing import Sealer
from ztsim.usecase import use_case

# Orders that still stand for a profile on its way to (or on) a phone.
_OPEN = frozenset({OrderState.ISSUED, OrderState.DOWNLOADED, OrderState.INSTALLED})


class OpenOrderExists(Conflict):
    """One open order per identity: a second would hand out a second live profile."""


@dataclass(frozen=True)
class Issued:
    """A new order and what is shown once: the activation code and confirmation code."""

    order: repo.Order
    code: ActivationCode
    confirmation_code: str | None


def _check_eid(eid: str | None) -> str | None:
    if eid is None:
        return None
    try:
        return Eid(eid).value
    except InvalidIdentifier as exc:
        raise InvalidInput(str(exc)) from None


def _event(order: repo.Order, kind: str, actor: str, **kw: object) -> NewEvent:
    reason = str(kw.pop("reason", ""))
    outcome = kw.pop("outcome", Outcome.SUCCESS)
    assert isinstance(outcome, Outcome)
    payload = {"order_id": order.id, "identity_id": order.identity_id, **kw}
    return NewEvent(
        order.org_id, kind, actor, subject_of("sim", order.iccid), outcome, reason, payload
    )


def activation_code(sealer: Sealer, conn: Connection, order: repo.Order) -> ActivationCode:
    sealed = repo.sealed_matching_ids(conn, order.org_id, [order.id])[order.id]
    return _code(sealer, order, sealed)


def _code(sealer: Sealer, order: repo.Order, sealed: bytes) -> ActivationCode:
    matching_id = sealer.open(sealed, order.id.encode()).decode("ascii")
    return ActivationCode(
        order.smdp_address, matching_id, order.smdp_oid, order.confirmation_required
    )


def create_order(
    conn: Connection,
    sealer: Sealer,
    org_id: str,
    identity_id: str,
    *,
    config: EsimConfig,
    actor: str,
    now: datetime,
    rand: Random,
    eid: str | None = None,
    iccid: str | None = None,
    confirmation: bool = False,
    replaces_id: str | None = None,
    reason: str = "",
) -> Issued:
    """Take an eSIM from stock (the lowest ICCID, or `iccid`), assign it to the identity
    and issue its activation code. An identity with an open order gets no second one."""
    with use_case(conn, now) as uc:
        checked_eid = _check_eid(eid)
        identities.get_identity(conn, org_id, identity_id)
        for existing in repo.orders_of(conn, org_id, [identity_id]):
            if effective_state(existing.state, existing.expires_at, now) in _OPEN:
                raise OpenOrderExists("the identity has an open eSIM order: cancel or re-issue it")
        if iccid is None:
            iccid = repo.first_stock_esim(conn, org_id)
            if iccid is None:
                raise Conflict("no eSIM profile in stock: import a batch with kind=esim")
        else:
            try:
                iccid = Iccid(iccid).value
            except InvalidIdentifier as exc:
                raise InvalidInput(str(exc)) from None
            sim = inventory.get_sim(conn, org_id, iccid)
            if sim.kind is not SimKind.ESIM or sim.state is not SimState.STOCK:
                raise Conflict("the SIM is not an eSIM in stock")
        order_id = new_id()
        sims.change_state(
            conn,
            org_id,
            iccid,
            SimAction.ASSIGN,
            actor=actor,
            reason=f"eSIM order {order_id}",
            now=now,
            identity_id=identity_id,
        )
        matching_id = new_matching_id(rand)
        code_text = new_confirmation_code(rand) if confirmation else None
        repo.insert_order(
            conn,
            {
                "id": order_id,
                "org_id": org_id,
                "identity_id": identity_id,
                "iccid": iccid,
                "eid": checked_eid,
                "state": OrderState.ISSUED.value,
                "smdp_address": config.smdp_address,
                "smdp_oid": config.smdp_oid,
                "matching_id_hash": matching_id_hash(matching_id),
                "matching_id_sealed": sealer.seal(matching_id.encode("ascii"), order_id.encode()),
                "confirmation_hash": confirmation_hash(code_text) if code_text else None,
                "expires_at": now + config.order_ttl,
                "replaces_id": replaces_id,
                "reason": reason,
                "created_by": actor,
                "created_at": now,
                "updated_at": now,
            },
        )
        order = repo.get_order(conn, org_id, order_id)
        uc.event(
            _event(
                order,
                "esim.order_created",
                actor,
                reason=reason,
                eid=checked_eid,
                expires_at=order.expires_at.isoformat(),
                confirmation_code_required=confirmation,
            )
        )
        code = ActivationCode(config.smdp_address, matching_id, config.smdp_oid, confirmation)
        return Issued(order, code, code_text)


@dataclass(frozen=True)
class BulkIssued:
    issued: list[Issued]
    # Identities that already had an open order: they get no second one.
    skipped: list[str]


def create_orders(
    conn: Connection,
    sealer: Sealer,
    org_id: str,
    identity_ids: Sequence[str],
    *,
    config: EsimConfig,
    actor: str,
    now: datetime,
    rand: Random,
    eid: str | None = None,
    confirmation: bool = False,
) -> BulkIssued:
    """An order for each identity that has no open one (one use case: the SIM changes are
    published once, at the end). Any other refusal refuses them all."""
    if eid is not None and len(identity_ids) != 1:
        raise InvalidInput("an EID binds one order: name exactly one identity")
    issued: list[Issued] = []
    skipped: list[str] = []
    with use_case(conn, now):
        for identity_id in identity_ids:
            try:
                with conn.begin_nested():
                    issued.append(
                        create_order(
                            conn,
                            sealer,
                            org_id,
                            identity_id,
                            config=config,
                            actor=actor,
                            now=now,
                            rand=rand,
                            eid=eid,
                            confirmation=confirmation,
                        )
                    )
            except OpenOrderExists:
                skipped.append(identity_id)
    return BulkIssued(issued, skipped)


def report_progress(
    conn: Connection,
    org_id: str,
    *,
    iccid: str,
    eid: str | None,
    point: NotificationPoint,
    status: ProgressStatus,
    actor: str,
    now: datetime,
) -> repo.Order:
    """Apply an ES2+ HandleDownloadProgressInfo-style report from the SM-DP+."""
    with use_case(conn, now) as uc:
        checked_eid = _check_eid(eid)
        order = repo.get_order_by_iccid(conn, org_id, iccid)
        target = on_progress(order.state, order.expires_at, now, point, status)
        if checked_eid and order.eid and checked_eid != order.eid:
            raise OrderRefused("the report names another eUICC than the order is bound to")
        bound_eid = order.eid or checked_eid
        if (
            target in (OrderState.DOWNLOADED, OrderState.INSTALLED, OrderState.ENABLED)
            and bound_eid
        ):
            _bind_device(conn, order, bound_eid, actor, now)
        if target is OrderState.ENABLED:
            sim = inventory.get_sim(conn, org_id, order.iccid)
            if sim.state is SimState.ASSIGNED:
                sims.change_state(
                    conn,
                    org_id,
                    order.iccid,
                    SimAction.ACTIVATE,
                    actor=actor,
                    reason=f"eSIM order {order.id} enabled",
                    now=now,
                )
        repo.change_state(conn, org_id, order.id, order.state, target, now, eid=bound_eid)
        uc.event(
            _event(
                order,
                "esim.progress",
                actor,
                outcome=Outcome.FAILURE if target is OrderState.FAILED else Outcome.SUCCESS,
                **{"from": order.state.value, "to": target.value},
                point=int(point),
                status=status.value,
                eid=bound_eid,
            )
        )
        return repo.get_order(conn, org_id, order.id)


def _bind_device(conn: Connection, order: repo.Order, eid: str, actor: str, now: datetime) -> None:
    """Tie the SIM to the employee's registered device with this EID, when there is one."""
    found = repo.find_device_by_eid(conn, order.org_id, eid)
    if found is None:
        return
    device_id, owner_id = found
    if owner_id is not None and owner_id != order.identity_id:
        raise OrderRefused("the eUICC belongs to another identity's device")
    sim = inventory.get_sim(conn, order.org_id, order.iccid)
    if sim.device_id is None:
        sims.set_binding(
            conn,
            order.org_id,
            order.iccid,
            device_id,
            actor=actor,
            reason=f"eSIM profile of order {order.id} is on this device's eUICC",
            now=now,
        )


def record_refused_progress(
    conn: Connection, org_id: str, *, iccid: str, why: str, actor: str, now: datetime
) -> None:
    """A refused report leaves a trace (in its own transaction: the refusal rolled back)."""
    try:
        order = repo.get_order_by_iccid(conn, org_id, iccid)
    except NotFound:
        return
    with use_case(conn, now) as uc:
        uc.event(_event(order, "esim.progress_refused", actor, outcome=Outcome.DENIED, reason=why))


def _retire_sim(
    conn: Connection, order: repo.Order, actor: str, reason: str, now: datetime
) -> None:
    sim = inventory.get_sim(conn, order.org_id, order.iccid)
    if sim.state is not SimState.RETIRED:
        sims.change_state(
            conn, order.org_id, order.iccid, SimAction.RETIRE, actor=actor, reason=reason, now=now
        )


def cancel_order(
    conn: Connection, org_id: str, order_id: str, *, actor: str, reason: str, now: datetime
) -> repo.Order:
    """Cancel an order not yet on a phone. Its SIM is retired, not returned to stock: its
    activation code has been handed out and must never reach a second person."""
    with use_case(conn, now) as uc:
        order = repo.get_order(conn, org_id, order_id)
        target = on_cancel(order.state, order.expires_at, now)
        why = reason.strip() or "eSIM order cancelled"
        _retire_sim(conn, order, actor, why, now)
        repo.change_state(conn, org_id, order.id, order.state, target, now, reason=reason)
        uc.event(_event(order, "esim.order_cancelled", actor, reason=reason))
        return repo.get_order(conn, org_id, order.id)


def reissue_order(
    conn: Connection,
    sealer: Sealer,
    org_id: str,
    order_id: str,
    *,
    config: EsimConfig,
    actor: str,
    reason: str,
    now: datetime,
    rand: Random,
    eid: str | None = None,
) -> Issued:
    """Lost or new phone: retire the old profile's SIM, issue a new order on a new eSIM
    for the same identity, move the number to it and record the SIM swap."""
    with use_case(conn, now) as uc:
        if not reason.strip():
            raise InvalidInput("a reason is required to re-issue an eSIM")
        old = repo.get_order(conn, org_id, order_id)
        old_target = on_reissue(old.state, old.expires_at, now)
        _retire_sim(conn, old, actor, reason, now)
        # The old order stops being open before the new one is made, so the new one may be.
        repo.change_state(conn, org_id, old.id, old.state, old_target, now, reason=reason)
        issued = create_order(
            conn,
            sealer,
            org_id,
            old.identity_id,
            config=config,
            actor=actor,
            now=now,
            rand=rand,
            eid=eid,
            confirmation=old.confirmation_required,
            replaces_id=old.id,
            reason=reason,
        )
        new = issued.order
        repo.change_state(conn, org_id, old.id, old_target, old_target, now, replaced_by=new.id)
        # The subscriber keeps their number: it moves to the new profile (none: nothing to move).
        sims.move_number(conn, org_id, old.iccid, new.iccid, actor=actor, now=now)
        inventory.mark_swapped(conn, org_id, new.iccid, now)
        uc.event(
            _event(old, "esim.order_reissued", actor, reason=reason, new_order_id=new.id),
            # Read later by the CAMARA SIM Swap API: subject is the SIM now in service.
            NewEvent(
                org_id,
                "sim.swap",
                actor,
                subject_of("sim", new.iccid),
                reason=reason,
                payload={
                    "old_iccid": old.iccid,
                    "new_iccid": new.iccid,
                    "identity_id": old.identity_id,
                },
            ),
        )
        return issued


def pack_page(
    conn: Connection,
    sealer: Sealer,
    org_id: str,
    order_id: str,
    now: datetime,
    *,
    dns: DnsLogging | None = None,
) -> PackPage:
    """The onboarding page of an order whose code can still be used. `dns`: the org's
    DNS privacy facts, read by the caller (without them the page says nothing of DNS)."""
    order = repo.get_order(conn, org_id, order_id)
    state = effective_state(order.state, order.expires_at, now)
    if state is not OrderState.ISSUED:
        raise OrderRefused(f"the order is {state.value}: its code can no longer be used")
    holder = identities.get_identity(conn, order.org_id, order.identity_id)
    org = identities.get_org(conn, order.org_id)
    code = activation_code(sealer, conn, order)
    return PackPage(
        holder.name, org.name, code, order.expires_at, order.id, dns_notice=_dns_notice(dns)
    )


def _dns_notice(dns: DnsLogging | None) -> str:
    return "" if dns is None else dns_privacy_paragraph(dns)


@dataclass(frozen=True)
class BulkPages:
    pages: list[PackPage]
    # Identities without a usable (issued, unexpired) order.
    skipped: list[str]


def pack_pages(
    conn: Connection,
    sealer: Sealer,
    org_id: str,
    identity_ids: Sequence[str],
    now: datetime,
    *,
    dns: DnsLogging | None = None,
) -> BulkPages:
    """Per identity, the page of its newest usable order (`dns` as for `pack_page`)."""
    usable: dict[str, repo.Order] = {}
    for order in repo.orders_of(conn, org_id, identity_ids):
        if effective_state(order.state, order.expires_at, now) is OrderState.ISSUED:
            usable[order.identity_id] = order
    sealed = repo.sealed_matching_ids(conn, org_id, [o.id for o in usable.values()])
    org = identities.get_org(conn, org_id)
    names = {i: identities.get_identity(conn, org_id, i).name for i in usable}
    notice = _dns_notice(dns)
    pages = [
        PackPage(
            names[i],
            org.name,
            _code(sealer, o, sealed[o.id]),
            o.expires_at,
            o.id,
            dns_notice=notice,
        )
        for i, o in usable.items()
    ]
    skipped = [i for i in identity_ids if i not in usable]
    return BulkPages(pages, skipped)
