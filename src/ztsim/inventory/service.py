"""Inventory operations: each checks its rules, changes the database and records
its event in one transaction, so a refused operation changes nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from ztsim.errors import Conflict, InvalidInput
from ztsim.events import store as events
from ztsim.events.schema import NewEvent, subject_of
from ztsim.identifiers import Eid, Imei, Imeisv, InvalidIdentifier
from ztsim.identity import repository as identities
from ztsim.inventory import repository as repo

# Stock imports live in their own module; callers know them as service operations.
from ztsim.inventory.imports import import_stock as import_stock
from ztsim.inventory.imports import import_stock_file as import_stock_file
from ztsim.inventory.lifecycle import SimAction, SimState, transition
from ztsim.inventory.models import Device, Sim


def change_state(
    conn: Connection,
    org_id: str,
    iccid: str,
    action: SimAction,
    *,
    actor: str,
    reason: str,
    now: datetime,
    identity_id: str | None = None,
) -> Sim:
    sim = repo.get_sim(conn, org_id, iccid)
    target = transition(sim.state, action, reason)
    values: dict[str, object] = {}
    if action is SimAction.ASSIGN:
        if identity_id is None:
            raise InvalidInput("assigning a SIM needs an identity")
        holder = identities.get_identity(conn, org_id, identity_id)
        if not holder.enabled:
            raise Conflict("the identity is disabled")
        values["identity_id"] = identity_id
    elif identity_id is not None:
        raise InvalidInput(f"{action.value} takes no identity")
    repo.change_state(conn, org_id, iccid, sim.state, target, now, **values)
    payload: dict[str, object] = {"from": sim.state.value, "to": target.value}
    if identity_id is not None:
        payload["identity_id"] = identity_id
    events.append(
        conn,
        [
            NewEvent(
                org_id,
                f"sim.{action.value}",
                actor,
                subject_of("sim", iccid),
                reason=reason,
                payload=payload,
            )
        ],
        now,
    )
    return repo.get_sim(conn, org_id, iccid)


def register_device(
    conn: Connection,
    org_id: str,
    *,
    imei: str,
    eid: str | None,
    owner_id: str | None,
    name: str,
    actor: str,
    now: datetime,
) -> Device:
    try:
        # An IMEISV (16 digits, as gateways report it) is accepted and stored as its IMEI.
        checked = Imeisv(imei).imei if len(imei) == 16 else Imei(imei)
        checked_eid = Eid(eid) if eid is not None else None
    except InvalidIdentifier as exc:
        raise InvalidInput(str(exc)) from None
    if owner_id is not None:
        identities.get_identity(conn, org_id, owner_id)
    device = repo.create_device(
        conn,
        org_id,
        imei=checked.value,
        eid=checked_eid.value if checked_eid else None,
        owner_id=owner_id,
        name=name,
        now=now,
    )
    events.append(
        conn,
        [
            NewEvent(
                org_id,
                "device.registered",
                actor,
                subject_of("device", device.id),
                payload={"imei": device.imei, "owner_id": owner_id},
            )
        ],
        now,
    )
    return device


def set_binding(
    conn: Connection,
    org_id: str,
    iccid: str,
    device_id: str | None,
    *,
    actor: str,
    reason: str,
    now: datetime,
) -> Sim:
    """Bind a SIM to a device (or unbind with None). The API allows it to admins only."""
    if not reason.strip():
        raise InvalidInput("a reason is required to change a SIM's device binding")
    sim = repo.get_sim(conn, org_id, iccid)
    if sim.state is SimState.RETIRED:
        raise Conflict("a retired SIM cannot be bound")
    if device_id is not None:
        device = repo.get_device(conn, org_id, device_id)
        if device.owner_id and sim.identity_id and device.owner_id != sim.identity_id:
            raise Conflict("the device belongs to another identity than the SIM")
    if device_id == sim.device_id:
        return sim
    repo.set_binding(conn, org_id, iccid, device_id, now)
    events.append(
        conn,
        [
            NewEvent(
                org_id,
                "sim.binding_changed",
                actor,
                subject_of("sim", iccid),
                reason=reason,
                payload={"from_device": sim.device_id, "to_device": device_id},
            )
        ],
        now,
    )
    return repo.get_sim(conn, org_id, iccid)


def bind_on_first_attach(
    conn: Connection, org_id: str, iccid: str, imei: str, *, now: datetime
) -> Device | None:
    """Trust on first attach: when the org enables it and the SIM has no binding yet,
    the first device it attaches from becomes its bound device. Returns the bound
    device, or None when nothing was bound (org policy off, or already bound)."""
    org = identities.get_org(conn, org_id)
    sim = repo.get_sim(conn, org_id, iccid)
    if not org.tofu_binding or sim.device_id is not None or sim.state is SimState.RETIRED:
        return None
    device = repo.find_device_by_imei(conn, org_id, imei)
    if device is None:
        device = register_device(
            conn,
            org_id,
            imei=imei,
            eid=None,
            owner_id=sim.identity_id,
            name="first attach",
            actor="system:tofu",
            now=now,
        )
    set_binding(
        conn, org_id, iccid, device.id, actor="system:tofu", reason="trust on first attach", now=now
    )
    return device
