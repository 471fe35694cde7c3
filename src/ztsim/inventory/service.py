"""Inventory use cases: each checks its rules, changes the database, records its event
and publishes what the planes must re-read (`Topic.SIM`, key: the ICCID) in the
caller's transaction (`ztsim.usecase`), so a refused operation changes nothing.
The eSIM flows and the RADIUS first-attach binding change SIMs through these functions
too, so every SIM change reaches the planes."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import Connection

from ztsim.errors import Conflict, InvalidInput
from ztsim.events.schema import NewEvent, subject_of
from ztsim.feed.change import Topic
from ztsim.identifiers import Eid, Imei, Imeisv, InvalidIdentifier
from ztsim.identity import repository as identities
from ztsim.inventory import number_history as history
from ztsim.inventory import repository as repo

# Stock imports live in their own module; callers know them as service operations.
from ztsim.inventory.imports import import_stock as import_stock
from ztsim.inventory.imports import import_stock_file as import_stock_file
from ztsim.inventory.lifecycle import SimAction, SimState, transition
from ztsim.inventory.models import Device, Sim
from ztsim.inventory.number_history import ChangeKind
from ztsim.usecase import use_case

# As MDMs print them; the same rule as ztsim.policy.posture's, which cannot import us.
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_serial_number(serial_number: str) -> str:
    if not _SERIAL.fullmatch(serial_number):
        raise InvalidInput("serial_number: 1-64 of letters, digits, '.', '_' and '-'")
    return serial_number


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
    with use_case(conn, now) as uc:
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
        if action is SimAction.ASSIGN and sim.msisdn is not None:
            # CAMARA SIM Swap 2.1.0 counts a new subscription as the number's first SIM.
            history.record(
                conn,
                org_id,
                sim.msisdn,
                ChangeKind.SIM,
                iccid=iccid,
                previous=None,
                current=iccid,
                actor=actor,
                now=now,
            )
        payload: dict[str, object] = {"from": sim.state.value, "to": target.value}
        if identity_id is not None:
            payload["identity_id"] = identity_id
        uc.event(
            NewEvent(
                org_id,
                f"sim.{action.value}",
                actor,
                subject_of("sim", iccid),
                reason=reason,
                payload=payload,
            )
        )
        uc.change(org_id, Topic.SIM, iccid, {"state": target.value})
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
    serial_number: str | None = None,
) -> Device:
    if serial_number is not None:
        check_serial_number(serial_number)
    try:
        # An IMEISV (16 digits, as gateways report it) is accepted and stored as its IMEI.
        checked = Imeisv(imei).imei if len(imei) == 16 else Imei(imei)
        checked_eid = Eid(eid) if eid is not None else None
    except InvalidIdentifier as exc:
        raise InvalidInput(str(exc)) from None
    with use_case(conn, now) as uc:
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
            serial_number=serial_number,
        )
        # A new device is bound to no SIM yet: no plane holds anything about it.
        uc.event(
            NewEvent(
                org_id,
                "device.registered",
                actor,
                subject_of("device", device.id),
                payload={"imei": device.imei, "owner_id": owner_id},
            )
        )
        return device


def update_device(
    conn: Connection,
    org_id: str,
    device_id: str,
    values: dict[str, str | None],
    *,
    actor: str,
    now: datetime,
) -> Device:
    """Rename a device or set its serial number (None: none). Planes hold neither; a
    serial number only says which device an MDM's posture report is about."""
    unknown = set(values) - {"name", "serial_number"}
    if unknown:
        raise InvalidInput(f"a device's {sorted(unknown)[0]} cannot be changed")
    if values.get("name") is None and "name" in values:
        raise InvalidInput("name: a string")
    serial = values.get("serial_number")
    if serial is not None:
        check_serial_number(serial)
    with use_case(conn, now) as uc:
        device = repo.update_device(conn, org_id, device_id, values)
        uc.audit(org_id, "device.updated", actor, subject_of("device", device_id), **values)
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
    with use_case(conn, now) as uc:
        sim = repo.get_sim(conn, org_id, iccid)
        if sim.state is SimState.RETIRED:
            raise Conflict("a retired SIM cannot be bound")
        device = None if device_id is None else repo.get_device(conn, org_id, device_id)
        if device and device.owner_id and sim.identity_id and device.owner_id != sim.identity_id:
            raise Conflict("the device belongs to another identity than the SIM")
        if device_id == sim.device_id:
            return sim
        repo.set_binding(conn, org_id, iccid, device_id, now)
        if device is not None and sim.msisdn is not None:
            before = repo.get_device(conn, org_id, sim.device_id).imei if sim.device_id else None
            history.record_device(
                conn,
                org_id,
                sim.msisdn,
                iccid=iccid,
                imei=device.imei,
                fallback=before,
                actor=actor,
                now=now,
            )
        uc.event(
            NewEvent(
                org_id,
                "sim.binding_changed",
                actor,
                subject_of("sim", iccid),
                reason=reason,
                payload={"from_device": sim.device_id, "to_device": device_id},
            )
        )
        uc.change(org_id, Topic.SIM, iccid)
        return repo.get_sim(conn, org_id, iccid)


def bind_on_first_attach(
    conn: Connection, org_id: str, iccid: str, imei: str, *, now: datetime
) -> Device | None:
    """Trust on first attach: when the org enables it and the SIM has no binding yet,
    the first device it attaches from becomes its bound device. Returns the bound
    device, or None when nothing was bound (org policy off, or already bound)."""
    with use_case(conn, now):  # one publish for the device and the binding
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
            conn,
            org_id,
            iccid,
            device.id,
            actor="system:tofu",
            reason="trust on first attach",
            now=now,
        )
        return device


def move_number(
    conn: Connection, org_id: str, from_iccid: str, to_iccid: str, *, actor: str, now: datetime
) -> str | None:
    """Move the number of SIM `from_iccid` to SIM `to_iccid` of the same identity (an eSIM
    re-issue, a SIM replacement); returns the number, or None when the first SIM has none
    (nothing moves). A number the new SIM brought from stock is released: a subscriber
    keeps their number across SIMs. No plane holds a SIM's number, so this publishes
    nothing of its own; its callers change both SIMs' states, which publish."""
    with use_case(conn, now) as uc:
        if from_iccid == to_iccid:
            raise InvalidInput("a number cannot move to the SIM it is on")
        old = repo.get_sim(conn, org_id, from_iccid)
        new = repo.get_sim(conn, org_id, to_iccid)
        if old.msisdn is None:
            return None
        if new.state is SimState.RETIRED:
            raise Conflict("a number cannot move to a retired SIM")
        if new.identity_id is None or new.identity_id != old.identity_id:
            raise Conflict("a number moves only to another SIM of the same identity")
        released = new.msisdn
        repo.set_msisdn(conn, org_id, from_iccid, None, now)  # unique: off the old SIM first
        repo.set_msisdn(conn, org_id, to_iccid, old.msisdn, now)
        if released is not None:
            history.withdraw_new_subscription(conn, org_id, released, to_iccid, now)
        history.record(
            conn,
            org_id,
            old.msisdn,
            ChangeKind.SIM,
            iccid=to_iccid,
            previous=from_iccid,
            current=to_iccid,
            actor=actor,
            now=now,
        )
        if new.device_id is not None:
            imei = repo.get_device(conn, org_id, new.device_id).imei
            history.record_device(
                conn,
                org_id,
                old.msisdn,
                iccid=to_iccid,
                imei=imei,
                fallback=None,
                actor=actor,
                now=now,
            )
        uc.audit(
            org_id,
            "sim.number_moved",
            actor,
            subject_of("sim", to_iccid),
            msisdn=old.msisdn,
            from_iccid=from_iccid,
            to_iccid=to_iccid,
            # The new SIM's own number from stock, now on no SIM (None: it had none).
            released_msisdn=released,
        )
        return old.msisdn
