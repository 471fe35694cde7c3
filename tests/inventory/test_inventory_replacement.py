"""Physical SIM replacement and number moves: the number follows its subscriber to the
new SIM, the old SIM is retired, the swap is marked with the org's cooling-off; a refused
one changes nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert, select

from ztsim.db import schema
from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.events import store as events
from ztsim.events.store import EventQuery
from ztsim.feed.change import Topic
from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind
from ztsim.inventory import number_history as history
from ztsim.inventory import repository as repo
from ztsim.inventory import service
from ztsim.inventory.lifecycle import SimAction, SimState
from ztsim.inventory.models import SimKind
from ztsim.inventory.number_history import ChangeKind
from ztsim.inventory.replacement import replace_sim
from ztsim.inventory.stock import parse_stock_csv
from ztsim.sealing import Sealer

from support.factories import SimSpec, activate, make_sims, stock_csv
from support.traces import refused, run
from tests_clock import NOW

IMEI, OTHER_IMEI = "490154203237518", "352099001761481"


@dataclasses.dataclass
class World:
    org: str
    other: str
    ann: str
    bob: str
    a: SimSpec  # ann's, active
    b: SimSpec  # bob's, active
    card: SimSpec  # physical, in stock, with a number of its own
    blank: SimSpec  # physical, in stock, without a number
    esim: SimSpec  # an eSIM in stock
    theirs: SimSpec  # the other org's, active
    their_card: SimSpec  # the other org's, in stock


def _stock(conn: Connection, sealer: Sealer, org: str, specs: list[SimSpec], kind: SimKind) -> None:
    service.import_stock(
        conn,
        sealer,
        org,
        parse_stock_csv(stock_csv(specs)),
        filename="stock.csv",
        kind=kind,
        actor="test",
        now=NOW,
    )


def _person(conn: Connection, org: str, name: str) -> str:
    return identities.create_identity(
        conn, org, kind=IdentityKind.USER, name=name, email=None, external_id=None, now=NOW
    ).id


@pytest.fixture
def world(engine: Engine, sealer: Sealer) -> World:
    a, b, card, blank, esim, theirs, their_card = make_sims(7, seed=31)
    blank = dataclasses.replace(blank, msisdn=None)
    with engine.begin() as conn:
        org = identities.create_org(conn, "Acme", "acme", NOW).id
        other = identities.create_org(conn, "Other", "other", NOW).id
        ann = activate(conn, sealer, org, a, NOW)
        bob = _person(conn, org, "Bob")
        _stock(conn, sealer, org, [b], SimKind.PHYSICAL)
        for action, holder in ((SimAction.ASSIGN, bob), (SimAction.ACTIVATE, None)):
            service.change_state(
                conn, org, b.iccid, action, actor="test", reason="", now=NOW, identity_id=holder
            )
        activate(conn, sealer, other, theirs, NOW)
        _stock(conn, sealer, org, [card, blank], SimKind.PHYSICAL)
        _stock(conn, sealer, org, [esim], SimKind.ESIM)
        _stock(conn, sealer, other, [their_card], SimKind.PHYSICAL)
    return World(org, other, ann, bob, a, b, card, blank, esim, theirs, their_card)


def _number(spec: SimSpec) -> str:
    assert spec.msisdn is not None
    return spec.msisdn


def _replace(
    org: str, iccid: str, new_iccid: str, reason: str = "card damaged"
) -> Callable[[Connection], Any]:
    return lambda conn: replace_sim(
        conn, org, iccid, new_iccid, actor="admin", reason=reason, now=NOW
    )


def _swap_columns(engine: Engine, iccid: str) -> tuple[Any, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            select(schema.sims.c.swapped_at, schema.sims.c.swap_recent_until).where(
                schema.sims.c.iccid == iccid
            )
        ).one()
    return row.swapped_at, row.swap_recent_until


def test_an_active_sim_is_replaced_and_keeps_its_number(engine: Engine, world: World) -> None:
    w = world
    new, left = run(engine, _replace(w.org, w.a.iccid, w.card.iccid))
    assert (new.iccid, new.state, new.identity_id) == (w.card.iccid, SimState.ACTIVE, w.ann)
    assert new.msisdn == w.a.msisdn
    assert left.kinds == [
        "sim.assign",
        "sim.activate",
        "sim.number_moved",
        "sim.retire",
        "sim.replaced",
    ]
    assert left.topics == [
        (Topic.SIM, w.card.iccid),
        (Topic.SIM, w.card.iccid),
        (Topic.SIM, w.a.iccid),
    ]
    assert left.actors == ["admin"] * 5
    with engine.connect() as conn:
        old = repo.get_sim(conn, w.org, w.a.iccid)
        moved = history.latest(conn, w.org, _number(w.a), ChangeKind.SIM)
        # The card's own number is released: on no SIM, and with no history of serving.
        assert history.sim_of(conn, w.org, _number(w.card)) is None
        assert history.changes(conn, w.org, _number(w.card))[0] == []
        [replaced], _ = events.query(conn, w.org, EventQuery(kind="sim.replaced"))
        [number_moved], _ = events.query(conn, w.org, EventQuery(kind="sim.number_moved"))
        [retired], _ = events.query(conn, w.org, EventQuery(kind="sim.retire"))
    assert (old.state, old.msisdn) == (SimState.RETIRED, None)
    assert retired.reason == "card damaged"
    assert moved is not None
    assert (moved.previous, moved.current, moved.iccid, moved.actor) == (
        w.a.iccid,
        w.card.iccid,
        w.card.iccid,
        "admin",
    )
    assert replaced.subject == f"sim:{w.card.iccid}"
    assert replaced.reason == "card damaged"
    assert replaced.payload == {
        "old_iccid": w.a.iccid,
        "new_iccid": w.card.iccid,
        "identity_id": w.ann,
        "msisdn": w.a.msisdn,
        "state": "active",
    }
    assert number_moved.payload == {
        "msisdn": w.a.msisdn,
        "from_iccid": w.a.iccid,
        "to_iccid": w.card.iccid,
        "released_msisdn": w.card.msisdn,
    }
    # No risk settings: the default cooling-off of 24 hours.
    assert _swap_columns(engine, w.card.iccid) == (NOW, NOW + timedelta(hours=24))
    assert _swap_columns(engine, w.a.iccid) == (None, None)


def test_a_suspended_sims_replacement_stays_suspended(engine: Engine, world: World) -> None:
    w = world
    with engine.begin() as conn:
        service.change_state(
            conn, w.org, w.a.iccid, SimAction.SUSPEND, actor="admin", reason="lost", now=NOW
        )
    new, left = run(engine, _replace(w.org, w.a.iccid, w.blank.iccid, "lost phone"))
    assert new.state is SimState.SUSPENDED
    assert new.msisdn == w.a.msisdn
    assert left.kinds[:3] == ["sim.assign", "sim.activate", "sim.suspend"]
    with engine.connect() as conn:
        [moved], _ = events.query(conn, w.org, EventQuery(kind="sim.number_moved"))
    assert moved.payload["released_msisdn"] is None  # the blank card brought no number


def test_an_assigned_sims_replacement_is_assigned(
    engine: Engine, sealer: Sealer, world: World
) -> None:
    w = world
    with engine.begin() as conn:
        service.change_state(
            conn, w.org, w.card.iccid, SimAction.ASSIGN, actor="a", reason="", now=NOW,
            identity_id=w.bob,
        )  # fmt: skip
    new, left = run(engine, _replace(w.org, w.card.iccid, w.blank.iccid))
    assert (new.state, new.identity_id, new.msisdn) == (SimState.ASSIGNED, w.bob, w.card.msisdn)
    assert "sim.activate" not in left.kinds


def _rows(engine: Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    s = schema.sims
    with engine.connect() as conn:
        sims = conn.execute(
            select(
                s.c.iccid,
                s.c.state,
                s.c.msisdn,
                s.c.identity_id,
                s.c.swapped_at,
                s.c.swap_recent_until,
            ).order_by(s.c.iccid)
        ).all()
        changes = conn.execute(
            select(schema.number_changes).order_by(schema.number_changes.c.id)
        ).all()
    return [tuple(r) for r in sims], [tuple(r) for r in changes]


def test_refused_replacements_change_nothing(engine: Engine, world: World) -> None:
    w = world
    with engine.begin() as conn:
        service.change_state(
            conn, w.org, w.b.iccid, SimAction.RETIRE, actor="a", reason="stolen", now=NOW
        )
    before = _rows(engine)
    refused(engine, InvalidInput, _replace(w.org, w.a.iccid, w.card.iccid, reason=" "))
    refused(engine, InvalidInput, _replace(w.org, w.a.iccid, "not an iccid"))
    refused(engine, Conflict, _replace(w.org, w.blank.iccid, w.card.iccid))  # old in stock
    refused(engine, Conflict, _replace(w.org, w.b.iccid, w.card.iccid))  # old retired
    refused(engine, Conflict, _replace(w.org, w.a.iccid, w.b.iccid))  # new not in stock
    refused(engine, Conflict, _replace(w.org, w.a.iccid, w.a.iccid))  # itself
    refused(engine, Conflict, _replace(w.org, w.a.iccid, w.esim.iccid))  # an eSIM
    # Another org's SIMs are not found, old or new, and the message names no org.
    with pytest.raises(NotFound, match=r"^replacement SIM not found$"), engine.begin() as conn:
        _replace(w.org, w.a.iccid, w.their_card.iccid)(conn)
    refused(engine, NotFound, _replace(w.org, w.a.iccid, w.their_card.iccid))
    refused(engine, NotFound, _replace(w.org, w.theirs.iccid, w.card.iccid))
    with engine.begin() as conn:
        identities.update_identity(conn, w.org, w.ann, name=None, enabled=False)
    refused(engine, Conflict, _replace(w.org, w.a.iccid, w.card.iccid))  # identity disabled
    assert _rows(engine) == before


def _settings(engine: Engine, org: str, cooling_off_s: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(schema.risk_settings).values(
                org_id=org,
                approval_required=False,
                cooling_off_s=cooling_off_s,
                monitored_days=120,
                detectors={},
                updated_by="admin",
                updated_at=NOW,
            )
        )


def test_the_swap_holds_for_the_orgs_cooling_off(engine: Engine, world: World) -> None:
    _settings(engine, world.org, 3600)
    _settings(engine, world.other, 7 * 86400)  # another org's setting is not ours
    run(engine, _replace(world.org, world.a.iccid, world.card.iccid))
    assert _swap_columns(engine, world.card.iccid) == (NOW, NOW + timedelta(hours=1))
    with engine.begin() as conn:
        assert repo.cooling_off(conn, world.other) == timedelta(days=7)
        assert repo.cooling_off(conn, "no such org") == repo.DEFAULT_COOLING_OFF


def _move(org: str, src: str, dst: str) -> Callable[[Connection], Any]:
    return lambda conn: service.move_number(conn, org, src, dst, actor="admin", now=NOW)


def test_a_number_moves_to_another_sim_of_its_identity(engine: Engine, world: World) -> None:
    w = world
    with engine.begin() as conn:
        one = service.register_device(
            conn, w.org, imei=IMEI, eid=None, owner_id=w.ann, name="", actor="a", now=NOW
        ).id
        two = service.register_device(
            conn, w.org, imei=OTHER_IMEI, eid=None, owner_id=w.ann, name="", actor="a", now=NOW
        ).id
        service.set_binding(conn, w.org, w.a.iccid, one, actor="a", reason="r", now=NOW)
        service.change_state(
            conn, w.org, w.blank.iccid, SimAction.ASSIGN, actor="a", reason="", now=NOW,
            identity_id=w.ann,
        )  # fmt: skip
        service.set_binding(conn, w.org, w.blank.iccid, two, actor="a", reason="r", now=NOW)
    moved, left = run(engine, _move(w.org, w.a.iccid, w.blank.iccid))
    assert moved == w.a.msisdn
    assert left.kinds == ["sim.number_moved"]
    assert left.changes == []  # no plane holds a number; the callers' state changes publish
    with engine.connect() as conn:
        assert history.number_of(conn, w.org, w.a.iccid) is None
        assert history.number_of(conn, w.org, w.blank.iccid) == w.a.msisdn
        device = history.latest(conn, w.org, _number(w.a), ChangeKind.DEVICE)
    # The number is now in the new SIM's device.
    assert device is not None
    assert (device.previous, device.current, device.iccid) == (IMEI, OTHER_IMEI, w.blank.iccid)
    # A SIM without a number moves nothing and records nothing.
    nothing, left = run(engine, _move(w.org, w.a.iccid, w.blank.iccid))
    assert nothing is None
    assert left.empty


def test_refused_moves_change_nothing(engine: Engine, world: World) -> None:
    w = world
    with engine.begin() as conn:
        service.change_state(
            conn, w.org, w.b.iccid, SimAction.RETIRE, actor="a", reason="stolen", now=NOW
        )
    before = _rows(engine)
    refused(engine, InvalidInput, _move(w.org, w.a.iccid, w.a.iccid))
    refused(engine, Conflict, _move(w.org, w.a.iccid, w.b.iccid))  # retired, and bob's
    refused(engine, Conflict, _move(w.org, w.a.iccid, w.card.iccid))  # in stock: no one's
    refused(engine, NotFound, _move(w.org, w.a.iccid, w.theirs.iccid))
    refused(engine, NotFound, _move(w.org, w.theirs.iccid, w.card.iccid))
    assert _rows(engine) == before
    with engine.begin() as conn:
        service.change_state(
            conn, w.org, w.card.iccid, SimAction.ASSIGN, actor="a", reason="", now=NOW,
            identity_id=w.bob,
        )  # fmt: skip
    before = _rows(engine)
    refused(engine, Conflict, _move(w.org, w.a.iccid, w.card.iccid))  # another identity's
    assert _rows(engine) == before
