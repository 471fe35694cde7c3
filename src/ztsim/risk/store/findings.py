"""Findings in `risk_findings`: recorded once per (detector, source event), and an org's
listed newest first with keyset pagination."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ztsim.db import schema
from ztsim.db.pagination import check_limit, decode_cursor, encode_cursor
from ztsim.risk.detectors import Finding
from ztsim.risk.settings import Detector, Response

_t = schema.risk_findings


@dataclass(frozen=True, slots=True)
class StoredFinding:
    id: int
    org_id: str
    detector: Detector
    source_event_id: int
    iccid: str
    at: datetime
    response: Response
    detail: Mapping[str, Any]


def insert_once(
    conn: Connection, finding: Finding, response: Response, detail: Mapping[str, Any]
) -> int | None:
    """Record `finding` with the response chosen for it; its id, or None when that
    detector already found it from that event (nothing written)."""
    values = {
        "org_id": finding.org_id,
        "detector": finding.detector.value,
        "source_event_id": finding.source_event_id,
        "iccid": finding.iccid,
        "at": finding.at,
        "response": response.value,
        "detail": dict(detail),
    }
    # ON CONFLICT DO NOTHING: a duplicate must not abort the caller's transaction (as a
    # unique violation would on PostgreSQL), and two watchers may race on one event.
    make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = (
        make(_t)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["detector", "source_event_id"])
        .returning(_t.c.id)
    )
    found = conn.execute(stmt).scalar_one_or_none()
    return None if found is None else int(found)


def set_detail(conn: Connection, finding_id: int, detail: Mapping[str, Any]) -> None:
    conn.execute(update(_t).where(_t.c.id == finding_id).values(detail=dict(detail)))


def _finding(m: RowMapping) -> StoredFinding:
    return StoredFinding(
        id=m["id"],
        org_id=m["org_id"],
        detector=Detector(m["detector"]),
        source_event_id=m["source_event_id"],
        iccid=m["iccid"],
        at=m["at"],
        response=Response(m["response"]),
        detail=m["detail"],
    )


def get_finding(conn: Connection, finding_id: int) -> StoredFinding | None:
    row = conn.execute(select(_t).where(_t.c.id == finding_id)).first()
    return None if row is None else _finding(row._mapping)


def list_findings(
    conn: Connection,
    org_id: str,
    *,
    iccid: str | None = None,
    detector: Detector | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[StoredFinding], str | None]:
    """Newest first (by id); the cursor continues to older findings."""
    check_limit(limit)
    stmt = select(_t).where(_t.c.org_id == org_id)
    if iccid is not None:
        stmt = stmt.where(_t.c.iccid == iccid)
    if detector is not None:
        stmt = stmt.where(_t.c.detector == detector.value)
    if cursor is not None:
        stmt = stmt.where(_t.c.id < decode_cursor(cursor, int))
    rows = conn.execute(stmt.order_by(_t.c.id.desc()).limit(limit + 1)).all()
    page = [_finding(r._mapping) for r in rows[:limit]]
    return page, encode_cursor(page[-1].id) if len(rows) > limit else None
