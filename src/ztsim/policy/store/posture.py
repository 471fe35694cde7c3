"""Device posture in the database: each device's last report, recorded from an MDM's
batch as one use case, read back, or dropped.

A report names its device within the reporting org only: an IMEI or serial number of
another org's device is as unknown as one nobody registered, so a connector learns
nothing about other orgs. MDMs resend what they already sent: a report no newer than the
stored one changes nothing, so resends publish nothing either. Each changed device is
audited (`device.posture`: the attribute names, not their values, besides `managed` and
`compliant`) and published on `Topic.POSTURE` (key: the device id), so the gateways
re-evaluate that device's subjects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy import delete as delete_rows
from sqlalchemy.dialects import postgresql, sqlite

from ztsim.db import schema
from ztsim.db.chunks import rows_in
from ztsim.errors import NotFound
from ztsim.events.schema import subject_of
from ztsim.feed.change import Topic
from ztsim.policy.facts import Posture
from ztsim.policy.posture import DeviceRef, PostureReport
from ztsim.usecase import use_case

_posture, _devices = schema.device_posture, schema.devices


@dataclass(frozen=True, slots=True)
class Result:
    """What a batch did, by the reports' positions in it."""

    applied: list[str]  # the devices whose stored posture changed, each once
    unmatched: list[int]  # reports naming no device of the org
    ignored: list[int]  # reports no newer than the device's stored one (or a later report's)


@dataclass(frozen=True, slots=True)
class StoredPosture:
    device_id: str
    posture: Posture
    received_at: datetime


def _lookup(conn: Connection, org_id: str, column: Any, values: set[str]) -> dict[str, str]:
    """value of `column` -> device id, for this org's devices only."""
    query = select(column, _devices.c.id).where(_devices.c.org_id == org_id)
    return {value: device_id for value, device_id in rows_in(conn, query, column, values)}


def resolve(conn: Connection, org_id: str, refs: Sequence[DeviceRef]) -> list[str | None]:
    """Each ref's device id within the org, or None: a handful of queries for a batch."""
    columns = {
        "device_id": _devices.c.id,
        "imei": _devices.c.imei,
        "serial_number": _devices.c.serial_number,
    }
    found = {
        name: _lookup(
            conn, org_id, column, {v for r in refs if (v := getattr(r, name)) is not None}
        )
        for name, column in columns.items()
    }
    out: list[str | None] = []
    for ref in refs:
        name = next(n for n in columns if getattr(ref, n) is not None)
        out.append(found[name].get(getattr(ref, name)))
    return out


def _store(conn: Connection, org_id: str, device_id: str, posture: Posture, now: datetime) -> bool:
    """Insert or replace the device's report unless the stored one is as new; one
    statement, so two connectors racing on a device keep the newer report."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(_posture).values(
        device_id=device_id,
        org_id=org_id,
        source=posture.source,
        attributes=dict(posture.attributes),
        observed_at=posture.observed_at,
        expires_at=posture.expires_at,
        received_at=now,
    )
    replaced = ("source", "attributes", "observed_at", "expires_at", "received_at")
    upsert = stmt.on_conflict_do_update(
        index_elements=[_posture.c.device_id],
        set_={name: stmt.excluded[name] for name in replaced},
        where=_posture.c.observed_at < stmt.excluded.observed_at,
    ).returning(_posture.c.device_id)
    return conn.execute(upsert).first() is not None


def _audit_payload(posture: Posture) -> dict[str, object]:
    attributes = posture.attributes
    return {
        "source": posture.source,
        "attributes": sorted(attributes),
        "managed": attributes.get("managed"),
        "compliant": attributes.get("compliant"),
    }


def record(
    conn: Connection,
    org_id: str,
    reports: Sequence[PostureReport],
    *,
    actor: str,
    now: datetime,
) -> Result:
    """Store a batch of reports as one use case: each device's newest report wins."""
    with use_case(conn, now) as uc:
        device_ids = resolve(conn, org_id, [r.ref for r in reports])
        unmatched = [i for i, device_id in enumerate(device_ids) if device_id is None]
        newest: dict[str, int] = {}  # device id -> index of its newest report in the batch
        for i, device_id in enumerate(device_ids):
            if device_id is None:
                continue
            best = newest.get(device_id)
            if best is None or reports[i].posture.observed_at >= reports[best].posture.observed_at:
                newest[device_id] = i
        applied: list[str] = []
        for device_id, i in newest.items():
            posture = reports[i].posture
            if _store(conn, org_id, device_id, posture, now):
                applied.append(device_id)
                subject = subject_of("device", device_id)
                uc.audit(org_id, "device.posture", actor, subject, **_audit_payload(posture))
                uc.change(org_id, Topic.POSTURE, device_id)
        kept = {newest[d] for d in applied}
        ignored = [i for i, d in enumerate(device_ids) if d is not None and i not in kept]
        return Result(applied, unmatched, ignored)


def _stored(row: Any) -> StoredPosture:
    posture = Posture(dict(row.attributes), row.observed_at, row.expires_at, row.source)
    return StoredPosture(row.device_id, posture, row.received_at)


def get(conn: Connection, org_id: str, device_id: str) -> StoredPosture:
    """The device's last report; NotFound when it has none (or is not the org's)."""
    row = conn.execute(
        select(_posture).where(_posture.c.org_id == org_id, _posture.c.device_id == device_id)
    ).first()
    if row is None:
        raise NotFound("no posture report for that device")
    return _stored(row)


def delete(conn: Connection, org_id: str, device_id: str, *, actor: str, now: datetime) -> None:
    """Forget the device's report: its posture checks say `missing` from now on."""
    with use_case(conn, now) as uc:
        gone = conn.execute(
            delete_rows(_posture).where(
                _posture.c.org_id == org_id, _posture.c.device_id == device_id
            )
        ).rowcount
        if not gone:
            raise NotFound("no posture report for that device")
        uc.audit(org_id, "device.posture.deleted", actor, subject_of("device", device_id))
        uc.change(org_id, Topic.POSTURE, device_id)
