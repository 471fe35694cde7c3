"""SIM use cases reach the planes: each leaves its change, its audit event and a SIM
outbox row (key: the ICCID); a refused one leaves none of them (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Connection, Engine

from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.feed.change import Topic
from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind
from ztsim.inventory import repository as repo
from ztsim.inventory import service
from ztsim.inventory.lifecycle import IllegalTransition, SimAction, SimState
from ztsim.inventory.models import SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.sealing import Sealer

from support.factories import activate, make_sims, stock_csv
from support.traces import refused, run
from tests_clock import NOW

IMEI, OTHER_IMEI = "490154203237518", "352099001761481"


@dataclass
class World:
    org: str
    other: str  # another org, with a SIM of its own
    iccid: str  # active, held by `holder`
    holder: str
    stock: str  # a SIM in stock
    other_iccid: str


@pytest.fixture
def world(engine: Engine, sealer: Sealer) -> World:
    active, other_active, stock = make_sims(3, seed=7)
    with engine.begin() as conn:
        org = identities.create_org(conn, "Acme", "acme", NOW).id
        other = identities.create_org(conn, "Other", "other", NOW).id
        holder = activate(conn, sealer, org, active, NOW)
        activate(conn, sealer, other, other_active, NOW)
        service.import_stock(
            conn,
            sealer,
            org,
            parse_stock_csv(stock_csv([stock])),
            filename="stock.csv",
            kind=SimKind.PHYSICAL,
            actor="test",
            now=NOW,
        )
    return World(org, other, active.iccid, holder, stock.iccid, other_active.iccid)


def _transition(
    org: str, iccid: str, action: SimAction, reason: str = "why", identity_id: str | None = None
) -> Callable[[Connection], Any]:
    return lambda conn: service.change_state(
        conn,
        org,
        iccid,
        action,
        actor="test",
        reason=reason,
        now=NOW,
        identity_id=identity_id,
    )


def test_every_transition_publishes_the_sims_new_state(engine: Engine, world: World) -> None:
    w = world
    steps = [
        (w.iccid, SimAction.SUSPEND, None, SimState.SUSPENDED),
        (w.iccid, SimAction.RESUME, None, SimState.ACTIVE),
        (w.iccid, SimAction.RETIRE, None, SimState.RETIRED),
        (w.stock, SimAction.ASSIGN, w.holder, SimState.ASSIGNED),
        (w.stock, SimAction.ACTIVATE, None, SimState.ACTIVE),
    ]
    for iccid, action, holder, state in steps:
        sim, left = run(engine, _transition(w.org, iccid, action, identity_id=holder))
        assert sim.state is state
        assert left.events == [(w.org, f"sim.{action.value}", f"sim:{iccid}")]
        assert left.topics == [(Topic.SIM, iccid)]
        assert left.payloads == [{"state": state.value}]
        assert {c.org_id for c in left.changes} == {w.org}


def test_refused_transitions_leave_nothing(engine: Engine, world: World) -> None:
    w = world
    with engine.begin() as conn:
        service.change_state(
            conn, w.org, w.iccid, SimAction.RETIRE, actor="t", reason="stolen", now=NOW
        )
        off = identities.create_identity(
            conn, w.org, kind=IdentityKind.USER, name="Off", email=None, external_id=None, now=NOW
        )
        identities.update_identity(conn, w.org, off.id, name=None, enabled=False)
    # Suspending a retired SIM; a forbidden transition; a missing reason.
    refused(engine, IllegalTransition, _transition(w.org, w.iccid, SimAction.SUSPEND))
    refused(engine, IllegalTransition, _transition(w.org, w.stock, SimAction.ACTIVATE))
    refused(engine, InvalidInput, _transition(w.org, w.stock, SimAction.RETIRE, reason=" "))
    # Another org's SIM, or an identity of another org or a disabled one.
    refused(engine, NotFound, _transition(w.org, w.other_iccid, SimAction.SUSPEND))
    other_holder = _holder(engine, w.other, w.other_iccid)
    refused(
        engine,
        NotFound,
        _transition(w.org, w.stock, SimAction.ASSIGN, identity_id=other_holder),
    )
    refused(engine, Conflict, _transition(w.org, w.stock, SimAction.ASSIGN, identity_id=off.id))
    with engine.connect() as conn:
        assert repo.get_sim(conn, w.org, w.stock).state is SimState.STOCK
        assert repo.get_sim(conn, w.other, w.other_iccid).state is SimState.ACTIVE


def _holder(engine: Engine, org: str, iccid: str) -> str:
    with engine.connect() as conn:
        holder = repo.get_sim(conn, org, iccid).identity_id
    assert holder is not None
    return holder


def _device(conn: Connection, org: str, imei: str, owner: str | None) -> str:
    return service.register_device(
        conn, org, imei=imei, eid=None, owner_id=owner, name="phone", actor="t", now=NOW
    ).id


def test_a_binding_change_publishes_the_sim(engine: Engine, world: World) -> None:
    w = world
    device, left = run(engine, lambda c: _device(c, w.org, IMEI, w.holder))
    # A new device is bound to nothing: audited, nothing for a plane.
    assert (left.kinds, left.changes) == (["device.registered"], [])

    def bind(device_id: str | None) -> Callable[[Connection], Any]:
        return lambda c: service.set_binding(
            c, w.org, w.iccid, device_id, actor="admin", reason="issued phone", now=NOW
        )

    sim, left = run(engine, bind(device))
    assert sim.device_id == device
    assert left.events == [(w.org, "sim.binding_changed", f"sim:{w.iccid}")]
    assert left.topics == [(Topic.SIM, w.iccid)]
    # The same binding again changes nothing and says nothing.
    _sim, left = run(engine, bind(device))
    assert left.empty
    sim, left = run(engine, bind(None))
    assert sim.device_id is None
    assert left.topics == [(Topic.SIM, w.iccid)]


def test_refused_bindings_leave_nothing(engine: Engine, world: World) -> None:
    w = world
    with engine.begin() as conn:
        someone = identities.create_identity(
            conn, w.org, kind=IdentityKind.USER, name="B", email=None, external_id=None, now=NOW
        ).id
        theirs = _device(conn, w.org, OTHER_IMEI, someone)
        elsewhere = _device(conn, w.other, IMEI, None)

    def bind(device_id: str, org: str = w.org, reason: str = "r") -> Callable[[Connection], Any]:
        return lambda c: service.set_binding(
            c, org, w.iccid, device_id, actor="admin", reason=reason, now=NOW
        )

    refused(engine, Conflict, bind(theirs))  # another identity's device
    refused(engine, NotFound, bind(elsewhere))  # another org's device
    refused(engine, NotFound, bind(theirs, org=w.other))  # the SIM, seen from another org
    refused(engine, InvalidInput, bind(theirs, reason=" "))
    refused(engine, InvalidInput, lambda c: _device(c, w.org, "123", None))  # a bad IMEI
    with engine.begin() as conn:
        service.change_state(
            conn, w.org, w.iccid, SimAction.RETIRE, actor="t", reason="stolen", now=NOW
        )
    refused(engine, Conflict, bind(theirs))  # a retired SIM


def test_first_attach_binds_and_publishes_once(engine: Engine, world: World) -> None:
    w = world

    def attach(imei: str) -> Callable[[Connection], Any]:
        return lambda c: service.bind_on_first_attach(c, w.org, w.iccid, imei, now=NOW)

    device, left = run(engine, attach(IMEI))
    assert device is None  # the org does not trust on first attach
    assert left.empty
    with engine.begin() as conn:
        identities.update_org(conn, w.org, tofu_binding=True)
    device, left = run(engine, attach(IMEI))
    assert device is not None
    assert left.kinds == ["device.registered", "sim.binding_changed"]
    assert left.actors == ["system:tofu", "system:tofu"]
    assert left.topics == [(Topic.SIM, w.iccid)]
    # Bound now: a second device changes nothing.
    device, left = run(engine, attach(OTHER_IMEI))
    assert device is None
    assert left.empty
