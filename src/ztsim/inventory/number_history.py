"""The history of each phone number (MSISDN): when it moved to another SIM, when its SIM
was seen in another device. CAMARA SIM Swap and Device Swap answer from it, and a
background notifier reads new rows in order (`since`).

Numbers are stored as sims.msisdn holds them: E.164 digits without the leading '+'
("4917012345678"). Every function here accepts either form and stores or looks up the
digits, so "+4917012345678" and "4917012345678" name the same number.

Rows are written by the inventory use cases, in their transaction (`ztsim.usecase`): a
refused use case leaves no history behind. Each row is a fact at its time; nothing here
publishes on the change feed (no plane holds a number's history)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, RowMapping, delete, insert, select

from ztsim.db import schema
from ztsim.db.pagination import check_limit, decode_cursor, encode_cursor
from ztsim.identifiers import Msisdn

_n = schema.number_changes
_s = schema.sims


class ChangeKind(StrEnum):
    # CAMARA SIM Swap: the number moved to another SIM (or got its first: a new subscription).
    SIM = "sim"
    # CAMARA Device Swap: the number's SIM was seen in another device (or its first one).
    DEVICE = "device"


@dataclass(frozen=True, slots=True)
class NumberChange:
    """One change behind `msisdn`. `iccid` is the SIM on the number after the change;
    `previous` and `current` are ICCIDs (kind SIM) or IMEIs (kind DEVICE), `previous`
    None when the number had none before (a new subscription, its first device)."""

    id: int
    org_id: str
    msisdn: str
    kind: ChangeKind
    at: datetime
    actor: str
    iccid: str
    previous: str | None
    current: str


def digits(msisdn: str) -> str:
    """The stored form of a number ("+49..." or "49..." -> "49..."); InvalidInput if it
    is no E.164 number."""
    return Msisdn(msisdn).value


def _change(m: RowMapping) -> NumberChange:
    return NumberChange(
        int(m["id"]),
        m["org_id"],
        m["msisdn"],
        ChangeKind(m["kind"]),
        m["at"],
        m["actor"],
        m["iccid"],
        m["previous"],
        m["current"],
    )


def record(
    conn: Connection,
    org_id: str,
    msisdn: str,
    kind: ChangeKind,
    *,
    iccid: str,
    previous: str | None,
    current: str,
    actor: str,
    now: datetime,
) -> None:
    conn.execute(
        insert(_n).values(
            org_id=org_id,
            msisdn=digits(msisdn),
            kind=kind.value,
            at=now,
            actor=actor,
            iccid=iccid,
            previous=previous,
            current=current,
        )
    )


def record_device(
    conn: Connection,
    org_id: str,
    msisdn: str,
    *,
    iccid: str,
    imei: str,
    fallback: str | None,
    actor: str,
    now: datetime,
) -> None:
    """Record that number `msisdn` (on SIM `iccid`) is now in device `imei`. CAMARA Device
    Swap asks about the number, not the SIM: the device before is the number's last one
    in its history (so a re-issued profile in the same phone is no device swap), else
    `fallback` (the SIM's previous device, for a number whose history holds no device)."""
    last = latest(conn, org_id, msisdn, ChangeKind.DEVICE)
    before = last.current if last is not None else fallback
    if before == imei:
        return
    record(
        conn,
        org_id,
        msisdn,
        ChangeKind.DEVICE,
        iccid=iccid,
        previous=before,
        current=imei,
        actor=actor,
        now=now,
    )


def withdraw_new_subscription(
    conn: Connection, org_id: str, msisdn: str, iccid: str, now: datetime
) -> None:
    """Drop the "new subscription" recorded at `now` for `msisdn` on `iccid`: a SIM taken
    from stock with a number of its own, whose number is released in the same use case
    because another number moves onto it (a re-issue, a replacement). Its number never
    served anyone, so it has no change to report."""
    conn.execute(
        delete(_n).where(
            _n.c.org_id == org_id,
            _n.c.msisdn == digits(msisdn),
            _n.c.kind == ChangeKind.SIM.value,
            _n.c.iccid == iccid,
            _n.c.previous.is_(None),
            _n.c.at == now,
        )
    )


def _one(
    conn: Connection, org_id: str, msisdn: str, kind: ChangeKind, newest: bool
) -> NumberChange | None:
    order = (_n.c.at.desc(), _n.c.id.desc()) if newest else (_n.c.at, _n.c.id)
    row = conn.execute(
        select(_n)
        .where(_n.c.org_id == org_id, _n.c.msisdn == digits(msisdn), _n.c.kind == kind.value)
        .order_by(*order)
        .limit(1)
    ).first()
    return None if row is None else _change(row._mapping)


def latest(conn: Connection, org_id: str, msisdn: str, kind: ChangeKind) -> NumberChange | None:
    """The number's most recent change of `kind` (by time), or None: none recorded."""
    return _one(conn, org_id, msisdn, kind, newest=True)


def first(conn: Connection, org_id: str, msisdn: str, kind: ChangeKind) -> NumberChange | None:
    """The number's oldest change of `kind` still kept, or None: none recorded."""
    return _one(conn, org_id, msisdn, kind, newest=False)


def changes(
    conn: Connection,
    org_id: str,
    msisdn: str,
    *,
    kind: ChangeKind | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[NumberChange], str | None]:
    """The number's changes, newest first (in the order they were recorded); the cursor
    continues to older ones."""
    check_limit(limit)
    stmt = select(_n).where(_n.c.org_id == org_id, _n.c.msisdn == digits(msisdn))
    if kind is not None:
        stmt = stmt.where(_n.c.kind == kind.value)
    if cursor is not None:
        stmt = stmt.where(_n.c.id < decode_cursor(cursor, int))
    rows = conn.execute(stmt.order_by(_n.c.id.desc()).limit(limit + 1)).all()
    page = [_change(r._mapping) for r in rows[:limit]]
    return page, (encode_cursor(page[-1].id) if len(rows) > limit else None)


def since(conn: Connection, after_id: int, limit: int) -> list[NumberChange]:
    """Changes of every org recorded after `after_id`, oldest first, at most `limit`: a
    reader keeps the last id it handled and asks again from there."""
    check_limit(limit)
    rows = conn.execute(select(_n).where(_n.c.id > after_id).order_by(_n.c.id).limit(limit)).all()
    return [_change(r._mapping) for r in rows]


def number_of(conn: Connection, org_id: str, iccid: str) -> str | None:
    """The number on SIM `iccid` now (digits), or None: the SIM has none, or is not this
    org's."""
    return conn.execute(
        select(_s.c.msisdn).where(_s.c.org_id == org_id, _s.c.iccid == iccid)
    ).scalar()


def sim_of(conn: Connection, org_id: str, msisdn: str) -> str | None:
    """The ICCID of the SIM holding `msisdn` now, or None: no SIM of this org has it."""
    return conn.execute(
        select(_s.c.iccid).where(_s.c.org_id == org_id, _s.c.msisdn == digits(msisdn))
    ).scalar()
