"""What CAMARA reads about a number, within the asking org, and the query events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from ztsim.db import schema
from ztsim.identity import repository as identities
from ztsim.inventory import number_history
from ztsim.inventory import service as inventory
from ztsim.inventory.lifecycle import SimAction
from ztsim.inventory.number_history import ChangeKind
from ztsim.risk.clients import Grant
from ztsim.risk.store import lines
from ztsim.risk.swap_answers import Kind, Line
from ztsim.sealing import Sealer

from support.factories import activate, make_sims

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def world(engine: Engine, sealer: Sealer) -> tuple[str, str, str, str]:
    """Org A with an active SIM; org B with one; their numbers (digits)."""
    spec_a, spec_b = make_sims(2, seed=73)
    with engine.begin() as conn:
        a = identities.create_org(conn, "A", "a", NOW).id
        b = identities.create_org(conn, "B", "b", NOW).id
        activate(conn, sealer, a, spec_a, NOW)
        activate(conn, sealer, b, spec_b, NOW)
    assert spec_a.msisdn is not None
    assert spec_b.msisdn is not None
    return a, b, spec_a.msisdn, spec_b.msisdn


def test_a_line_is_the_sims_state_and_the_latest_change(
    engine: Engine, world: tuple[str, str, str, str]
) -> None:
    a, _, number, _ = world
    with engine.begin() as conn:
        assert lines.line(conn, a, number, Kind.SIM) == Line("active", False, NOW)
        assert lines.line(conn, a, number, Kind.DEVICE) == Line("active", False, None)
        iccid = number_history.sim_of(conn, a, number)
        assert iccid is not None
        for hours in (5, 2, 9):
            number_history.record(
                conn,
                a,
                number,
                ChangeKind.DEVICE,
                iccid=iccid,
                previous=None,
                current=f"35209900176148{hours}",
                actor="t",
                now=NOW + timedelta(hours=hours),
            )
        inventory.change_state(conn, a, iccid, SimAction.SUSPEND, actor="t", reason="lost", now=NOW)
        latest = NOW + timedelta(hours=9)
        assert lines.line(conn, a, number, Kind.DEVICE) == Line("suspended", False, latest)
        assert lines.latest_change(conn, a, number, Kind.SIM) == NOW


def test_another_orgs_number_is_no_line(engine: Engine, world: tuple[str, str, str, str]) -> None:
    a, b, number_a, number_b = world
    with engine.connect() as conn:
        assert lines.line(conn, a, number_b, Kind.SIM) is None
        assert lines.line(conn, b, number_a, Kind.SIM) is None
        assert lines.line(conn, a, "4915199999999", Kind.DEVICE) is None
        assert lines.latest_change(conn, a, number_b, Kind.SIM) is None


def test_a_query_is_an_event_of_the_clients_org(
    engine: Engine, world: tuple[str, str, str, str]
) -> None:
    a, _, number, _ = world
    grant = Grant(a, "c" * 32, frozenset({"sim-swap"}), "+" + number)
    with engine.begin() as conn:
        lines.record_query(
            conn,
            grant,
            operation="sim-swap.check",
            msisdn=number,
            answer={"swapped": True},
            now=NOW,
        )
        lines.record_query(
            conn,
            grant,
            operation="sim-swap.check",
            msisdn=number,
            answer={"status": 400, "code": "OUT_OF_RANGE"},
            now=NOW,
            refused=True,
        )
    e = schema.events
    with engine.connect() as conn:
        rows = conn.execute(
            select(e.c.org_id, e.c.actor, e.c.subject, e.c.outcome, e.c.payload)
            .where(e.c.kind == "camara.query")
            .order_by(e.c.id)
        ).all()
    assert [(r.org_id, r.actor, r.subject, r.outcome) for r in rows] == [
        (a, "api_client:" + "c" * 32, f"msisdn:{number}", "success"),
        (a, "api_client:" + "c" * 32, f"msisdn:{number}", "denied"),
    ]
    assert rows[0].payload == {
        "client_id": "c" * 32,
        "operation": "sim-swap.check",
        "answer": {"swapped": True},
        "legs": 3,
    }
