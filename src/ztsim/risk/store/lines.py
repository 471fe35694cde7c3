"""What the CAMARA APIs read about a number, and the event each query leaves.

Reads are always within the asking client's org: a number another org holds is, to this
org, a number nobody holds (the same 404), so no client learns whose numbers exist.
The history is `ztsim.inventory.number_history`'s; the SIM's state says whether the
number is in service at all (`swap_answers` decides what that means).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ztsim.db import schema
from ztsim.events.schema import NewEvent, Outcome, subject_of
from ztsim.inventory import number_history
from ztsim.inventory.number_history import ChangeKind
from ztsim.risk.clients import Grant
from ztsim.risk.swap_answers import Kind, Line
from ztsim.usecase import use_case

_sims = schema.sims


def latest_change(conn: Connection, org_id: str, msisdn: str, kind: Kind) -> datetime | None:
    latest = number_history.latest(conn, org_id, msisdn, ChangeKind(kind.value))
    return None if latest is None else latest.at


def line(conn: Connection, org_id: str, msisdn: str, kind: Kind) -> Line | None:
    """The number's line in this org, or None when no SIM of the org holds the number."""
    row = conn.execute(
        select(_sims.c.state, _sims.c.device_id).where(
            _sims.c.org_id == org_id, _sims.c.msisdn == msisdn
        )
    ).first()
    if row is None:
        return None
    latest_sim = number_history.latest(conn, org_id, msisdn, ChangeKind.SIM)
    moved_here = latest_sim is not None and latest_sim.previous is not None
    return Line(
        row.state,
        row.device_id is not None,
        latest_change(conn, org_id, msisdn, kind),
        moved_here,
    )


def record_query(
    conn: Connection,
    grant: Grant,
    *,
    operation: str,
    msisdn: str,
    answer: Mapping[str, Any],
    now: datetime,
    refused: bool = False,
) -> None:
    """One `camara.query` event in the client's org: who asked about which number, and
    what they were told (the response body, or the error's status and code)."""
    with use_case(conn, now) as uc:
        uc.event(
            NewEvent(
                grant.org_id,
                "camara.query",
                f"api_client:{grant.client_id}",
                subject_of("msisdn", msisdn),
                Outcome.DENIED if refused else Outcome.SUCCESS,
                payload={
                    "client_id": grant.client_id,
                    "operation": operation,
                    "answer": dict(answer),
                    "legs": 2 if grant.phone_number is None else 3,
                },
            )
        )
