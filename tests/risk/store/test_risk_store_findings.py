"""Findings in the database: written once per (detector, source event) without breaking
the caller's transaction, and listed per org, newest first, a page at a time (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from ztsim.db import schema
from ztsim.errors import InvalidInput
from ztsim.identity import repository as identities
from ztsim.risk.detectors import Finding
from ztsim.risk.settings import Detector, Response
from ztsim.risk.store import findings

from tests_clock import NOW


def _orgs(engine: Engine) -> tuple[str, str]:
    with engine.begin() as conn:
        return (
            identities.create_org(conn, "A", "a", NOW).id,
            identities.create_org(conn, "B", "b", NOW).id,
        )


def _finding(org: str, event: int, detector: Detector = Detector.TWIN_SESSION) -> Finding:
    return Finding(detector, org, "8944000000000000001", event, NOW + timedelta(seconds=event), {})


def test_a_finding_is_written_once_and_the_transaction_goes_on(engine: Engine) -> None:
    org, _ = _orgs(engine)
    with engine.begin() as conn:
        first = findings.insert_once(conn, _finding(org, 10), Response.SUSPEND, {"a": 1})
        again = findings.insert_once(conn, _finding(org, 10), Response.ALERT, {"a": 2})
        # Another detector may find something in the same event.
        other = findings.insert_once(
            conn, _finding(org, 10, Detector.IMEI_FLAPPING), Response.ALERT, {}
        )
        # Still usable after the conflict (PostgreSQL aborts a transaction on an error).
        count = conn.execute(select(func.count()).select_from(schema.risk_findings)).scalar()
    assert first is not None
    assert again is None
    assert other is not None
    assert count == 2
    with engine.connect() as conn:
        stored = findings.get_finding(conn, first)
        assert findings.get_finding(conn, 10_000) is None
    assert stored is not None
    assert (stored.response, stored.detail, stored.source_event_id) == (
        Response.SUSPEND,
        {"a": 1},
        10,
    )
    assert stored.at == NOW + timedelta(seconds=10)


def test_findings_are_listed_per_org_newest_first_in_pages(engine: Engine) -> None:
    org, other = _orgs(engine)
    with engine.begin() as conn:
        for n in range(5):
            findings.insert_once(conn, _finding(org, n), Response.ALERT, {"n": n})
        findings.insert_once(conn, _finding(other, 99), Response.ALERT, {})
        findings.insert_once(
            conn, _finding(org, 50, Detector.SQN_ANOMALY), Response.RESTRICT, {"n": 50}
        )
    with engine.connect() as conn:
        page, cursor = findings.list_findings(conn, org, limit=4)
        assert [f.detail["n"] for f in page] == [50, 4, 3, 2]
        assert cursor is not None
        rest, end = findings.list_findings(conn, org, limit=4, cursor=cursor)
        assert [f.detail["n"] for f in rest] == [1, 0]
        assert end is None
        sqn, _ = findings.list_findings(conn, org, detector=Detector.SQN_ANOMALY)
        assert [f.source_event_id for f in sqn] == [50]
        assert findings.list_findings(conn, org, iccid="8944000000000000009")[0] == []
        assert [f.org_id for f in findings.list_findings(conn, other)[0]] == [other]
        with pytest.raises(InvalidInput):
            findings.list_findings(conn, org, cursor="not-ours")
