"""Risk settings in the database: the defaults for an org without a row, a whole
replacement per put with its audit event, and orgs kept apart (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from ztsim.identity import repository as identities
from ztsim.risk.settings import DEFAULT_SETTINGS, Detector, Response, with_response
from ztsim.risk.store.settings import get_settings, put_settings

from support.traces import run
from tests_clock import NOW


def test_settings_default_then_put_and_read_back(engine: Engine) -> None:
    with engine.begin() as conn:
        org = identities.create_org(conn, "Acme", "acme", NOW).id
        other = identities.create_org(conn, "Other", "other", NOW).id
        assert get_settings(conn, org) == DEFAULT_SETTINGS
    wanted = with_response(
        DEFAULT_SETTINGS.updated(
            {
                "approval_required": True,
                "cooling_off": "48h",
                "monitored_days": 30,
                "detectors": {"imei_flapping": {"devices": 4, "window": "2h"}},
            }
        ),
        Detector.TWIN_SESSION,
        Response.SUSPEND,
    )
    stored, left = run(engine, lambda c: put_settings(c, org, wanted, actor="token:admin", now=NOW))
    assert stored == wanted
    assert left.events == [(org, "risk.settings_updated", f"org:{org}")]
    assert left.actors == ["token:admin"]
    assert left.changes == []
    with engine.begin() as conn:
        assert get_settings(conn, org) == wanted
        assert get_settings(conn, org).cooling_off == timedelta(hours=48)
        assert get_settings(conn, other) == DEFAULT_SETTINGS
    # A second put replaces the first whole.
    run(engine, lambda c: put_settings(c, org, DEFAULT_SETTINGS, actor="token:admin", now=NOW))
    with engine.begin() as conn:
        assert get_settings(conn, org) == DEFAULT_SETTINGS
