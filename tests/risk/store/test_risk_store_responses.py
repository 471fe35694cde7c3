"""Each response to a finding, in one use case with its record (SQLite and PostgreSQL):
alert tells, restrict marks the SIM clone-suspected and publishes its SIM change, suspend
suspends it through the inventory; a SIM no longer active is recorded, nothing more; a
finding recorded before changes nothing; an admin lifts a suspicion."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from ztsim.db import schema
from ztsim.errors import NotFound
from ztsim.feed.change import Topic
from ztsim.inventory import repository as inventory
from ztsim.inventory import service
from ztsim.inventory.lifecycle import SimAction, SimState
from ztsim.risk.detectors import Finding
from ztsim.risk.settings import Detector, Response
from ztsim.risk.store import findings
from ztsim.risk.store.responses import Outcome, clear_suspicion, respond
from ztsim.sealing import Sealer

from support.radius_world import World, build_world
from support.traces import refused, run
from tests_clock import NOW


def _finding(w: World, event: int = 1, detector: Detector = Detector.TWIN_SESSION) -> Finding:
    return Finding(detector, w.org_id, w.active_iccid, event, NOW, {"signal": "clone_suspected"})


def _sim(engine: Engine, w: World) -> tuple[str, object]:
    s = schema.sims
    with engine.connect() as conn:
        row = conn.execute(
            select(s.c.state, s.c.clone_suspected_at).where(s.c.iccid == w.active_iccid)
        ).one()
    return row[0], row[1]


@pytest.fixture
def world(engine: Engine, sealer: Sealer) -> World:
    return build_world(engine, sealer)


def test_alert_records_and_tells_only(engine: Engine, world: World) -> None:
    applied, left = run(engine, lambda c: respond(c, _finding(world), Response.ALERT, now=NOW))
    assert applied is not None
    assert applied.outcome is Outcome.ALERTED
    assert left.kinds == ["risk.finding"]
    assert left.actors == ["risk:twin_session"]
    assert left.changes == []
    assert _sim(engine, world) == ("active", None)
    with engine.connect() as conn:
        stored = findings.get_finding(conn, applied.finding_id)
    assert stored is not None
    assert stored.response is Response.ALERT
    assert stored.detail == {"signal": "clone_suspected", "outcome": "alerted"}


def test_restrict_marks_the_sim_and_makes_the_planes_reread_it(
    engine: Engine, world: World
) -> None:
    applied, left = run(engine, lambda c: respond(c, _finding(world), Response.RESTRICT, now=NOW))
    assert applied is not None
    assert applied.outcome is Outcome.RESTRICTED
    assert left.kinds == ["risk.finding"]
    assert left.topics == [(Topic.SIM, world.active_iccid)]
    state, since = _sim(engine, world)
    assert state == "active"
    assert since == NOW
    # A second finding finds it restricted already: recorded, nothing published.
    again, left = run(
        engine,
        lambda c: respond(c, _finding(world, 2), Response.RESTRICT, now=NOW + timedelta(minutes=1)),
    )
    assert again is not None
    assert again.outcome is Outcome.UNCHANGED
    assert left.changes == []
    assert _sim(engine, world)[1] == NOW


def test_suspend_suspends_through_the_inventory(engine: Engine, world: World) -> None:
    applied, left = run(engine, lambda c: respond(c, _finding(world), Response.SUSPEND, now=NOW))
    assert applied is not None
    assert applied.outcome is Outcome.SUSPENDED
    assert left.kinds == ["sim.suspend", "risk.finding"]
    assert left.actors == ["risk:twin_session", "risk:twin_session"]
    assert left.topics == [(Topic.SIM, world.active_iccid)]
    assert _sim(engine, world)[0] == "suspended"
    e = schema.events
    with engine.connect() as conn:
        reason = conn.execute(select(e.c.reason).where(e.c.kind == "sim.suspend")).scalars().all()
    assert reason[-1] == "automatic response to a twin_session finding"


@pytest.mark.parametrize("action", [SimAction.SUSPEND, SimAction.RETIRE])
def test_a_sim_no_longer_active_is_recorded_nothing_more(
    engine: Engine, world: World, action: SimAction
) -> None:
    with engine.begin() as conn:
        service.change_state(
            conn, world.org_id, world.active_iccid, action, actor="t", reason="lost", now=NOW
        )
    applied, left = run(engine, lambda c: respond(c, _finding(world), Response.SUSPEND, now=NOW))
    assert applied is not None
    assert applied.outcome is Outcome.UNCHANGED
    assert left.kinds == ["risk.finding"]
    assert left.changes == []


def test_a_finding_recorded_before_changes_nothing(engine: Engine, world: World) -> None:
    run(engine, lambda c: respond(c, _finding(world), Response.ALERT, now=NOW))
    # The same event read again, now with the org asking for suspension: still once.
    again, left = run(engine, lambda c: respond(c, _finding(world), Response.SUSPEND, now=NOW))
    assert again is None
    assert left.empty
    assert _sim(engine, world)[0] == "active"


def test_a_sim_not_of_the_org_is_recorded_only(engine: Engine, world: World) -> None:
    stranger = Finding(Detector.SQN_ANOMALY, world.org_id, "8999999999999999999", 5, NOW, {})
    applied, left = run(engine, lambda c: respond(c, stranger, Response.SUSPEND, now=NOW))
    assert applied is not None
    assert applied.outcome is Outcome.UNKNOWN_SIM
    assert left.kinds == ["risk.finding"]


def test_an_admin_lifts_a_suspicion(engine: Engine, world: World) -> None:
    run(engine, lambda c: respond(c, _finding(world), Response.RESTRICT, now=NOW))
    cleared, left = run(
        engine,
        lambda c: clear_suspicion(c, world.org_id, world.active_iccid, actor="token:a", now=NOW),
    )
    assert cleared is True
    assert left.kinds == ["risk.suspicion_cleared"]
    assert left.topics == [(Topic.SIM, world.active_iccid)]
    assert _sim(engine, world) == ("active", None)
    # Lifting it again changes nothing; another org's SIM does not exist.
    again, left = run(
        engine,
        lambda c: clear_suspicion(c, world.org_id, world.active_iccid, actor="token:a", now=NOW),
    )
    assert again is False
    assert left.empty
    refused(
        engine,
        NotFound,
        lambda c: clear_suspicion(c, "another-org", world.active_iccid, actor="token:a", now=NOW),
    )
    with engine.connect() as conn:
        assert inventory.get_sim(conn, world.org_id, world.active_iccid).state is SimState.ACTIVE
