"""An org's risk settings in `risk_settings`: read (the defaults when the org has no row)
and replaced by an admin, with an audit event."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from ztsim.db import schema
from ztsim.events.schema import subject_of
from ztsim.risk.settings import (
    DEFAULT_SETTINGS,
    Detector,
    DetectorConfig,
    RiskSettings,
    settings_from_json,
)
from ztsim.usecase import use_case

_t = schema.risk_settings


def get_settings(conn: Connection, org_id: str) -> RiskSettings:
    row = conn.execute(select(_t).where(_t.c.org_id == org_id)).first()
    if row is None:
        return DEFAULT_SETTINGS
    m = row._mapping
    return RiskSettings(
        approval_required=m["approval_required"],
        cooling_off=timedelta(seconds=m["cooling_off_s"]),
        monitored_days=m["monitored_days"],
        detectors=_detectors(m["detectors"]),
    )


def _detectors(stored: Mapping[str, Any]) -> dict[Detector, DetectorConfig]:
    # Stored in the API's JSON form: read back through the same checks.
    return dict(settings_from_json({"detectors": stored}).detectors)


def put_settings(
    conn: Connection, org_id: str, settings: RiskSettings, *, actor: str, now: datetime
) -> RiskSettings:
    """Replace the org's settings whole; the event carries the new settings (no secrets)."""
    with use_case(conn, now) as uc:
        conn.execute(delete(_t).where(_t.c.org_id == org_id))
        conn.execute(
            insert(_t).values(
                org_id=org_id,
                approval_required=settings.approval_required,
                cooling_off_s=int(settings.cooling_off.total_seconds()),
                monitored_days=settings.monitored_days,
                detectors={d.value: c.as_json() for d, c in settings.detectors.items()},
                updated_by=actor,
                updated_at=now,
            )
        )
        uc.audit(
            org_id, "risk.settings_updated", actor, subject_of("org", org_id), **settings.as_json()
        )
        return get_settings(conn, org_id)
