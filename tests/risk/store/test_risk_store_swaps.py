"""Swaps under the two-person rule, on SQLite and PostgreSQL: without approval a swap runs
at once; with it a request waits (and changes nothing) until another person approves
(the swap runs then) or someone rejects it; an approval whose swap is refused leaves the
request failed and nothing else; expired requests cannot be decided."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine

from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.esim import repository as orders
from ztsim.esim import service as esim
from ztsim.esim.config import EsimConfig
from ztsim.feed.change import Topic
from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind
from ztsim.inventory import repository as inventory
from ztsim.inventory import service as sims
from ztsim.inventory.lifecycle import SimState
from ztsim.inventory.models import Sim, SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.risk.approvals import (
    REQUEST_TTL,
    RequestClosed,
    RequestState,
    SamePerson,
    SwapKind,
    SwapRequest,
)
from ztsim.risk.settings import DEFAULT_SETTINGS
from ztsim.risk.store import swaps
from ztsim.risk.store.settings import put_settings
from ztsim.sealing import Sealer

from support.factories import activate, make_sims, stock_csv
from support.leaks import LEAKS
from support.traces import refused, run
from tests_clock import NOW

CONFIG = EsimConfig("smdp.example.test", None, timedelta(days=30))
ANN, BOB = "identity:ann", "identity:bob"
Call = Callable[[Connection], Any]


@dataclass
class World:
    org: str
    other: str
    tools: swaps.SwapTools
    order_id: str  # an eSIM order of Dee
    order_iccid: str
    iccid: str  # Ann's active physical SIM, with a number
    spare: str  # a physical SIM in stock
    spare2: str


@pytest.fixture
def world(engine: Engine, sealer: Sealer) -> World:
    physical = make_sims(3, seed=31)
    with engine.begin() as conn:
        org = identities.create_org(conn, "Acme", "acme", NOW).id
        other = identities.create_org(conn, "Other", "other", NOW).id
        activate(conn, sealer, org, physical[0], NOW)
        sims.import_stock(
            conn,
            sealer,
            org,
            parse_stock_csv(stock_csv(physical[1:])),
            filename="spares.csv",
            kind=SimKind.PHYSICAL,
            actor="test",
            now=NOW,
        )
        sims.import_stock(
            conn,
            sealer,
            org,
            parse_stock_csv(stock_csv(make_sims(3, seed=32, start=50))),
            filename="esim.csv",
            kind=SimKind.ESIM,
            actor="test",
            now=NOW,
        )
        dee = identities.create_identity(
            conn, org, kind=IdentityKind.USER, name="Dee", email=None, external_id=None, now=NOW
        )
        issued = esim.create_order(
            conn, sealer, org, dee.id, config=CONFIG, actor="test", now=NOW, rand=os.urandom
        )
        LEAKS.add_secret(issued.code.matching_id)
    tools = swaps.SwapTools(sealer, CONFIG, os.urandom)
    return World(
        org,
        other,
        tools,
        issued.order.id,
        issued.order.iccid,
        physical[0].iccid,
        physical[1].iccid,
        physical[2].iccid,
    )


def _require_approval(engine: Engine, org: str, required: bool = True) -> None:
    settings = DEFAULT_SETTINGS.updated({"approval_required": required})
    with engine.begin() as conn:
        put_settings(conn, org, settings, actor="test", now=NOW)


def _reissue(w: World, who: str = ANN) -> Call:
    def call(conn: Connection) -> Any:
        result = swaps.request_reissue(
            conn,
            w.tools,
            w.org,
            w.order_id,
            actor=f"token:{who}",
            requester=who,
            reason="lost phone",
            now=NOW,
        )
        if isinstance(result, esim.Issued):
            LEAKS.add_secret(result.code.matching_id)
        return result

    return call


def _replace(w: World, who: str = ANN, new: str | None = None) -> Call:
    return lambda conn: swaps.request_replace(
        conn,
        w.org,
        w.iccid,
        new or w.spare,
        actor=f"token:{who}",
        requester=who,
        reason="broken card",
        now=NOW,
    )


def _sim(engine: Engine, org: str, iccid: str) -> Sim:
    with engine.begin() as conn:
        return inventory.get_sim(conn, org, iccid)


def test_without_approval_a_reissue_runs_at_once(engine: Engine, world: World) -> None:
    issued, left = run(engine, _reissue(world))
    assert isinstance(issued, esim.Issued)
    assert issued.order.replaces_id == world.order_id
    assert "sim.swap" in left.kinds
    assert "risk.swap_requested" not in left.kinds
    assert _sim(engine, world.org, world.order_iccid).state is SimState.RETIRED


def test_without_approval_a_replacement_runs_at_once(engine: Engine, world: World) -> None:
    new, left = run(engine, _replace(world))
    assert isinstance(new, Sim)
    assert (new.iccid, new.state) == (world.spare, SimState.ACTIVE)
    assert "sim.replaced" in left.kinds
    assert _sim(engine, world.org, world.iccid).state is SimState.RETIRED


def test_a_pending_reissue_changes_nothing_until_another_person_approves(
    engine: Engine, world: World
) -> None:
    _require_approval(engine, world.org)
    request, left = run(engine, _reissue(world))
    assert isinstance(request, SwapRequest)
    assert (request.kind, request.state, request.target) == (
        SwapKind.ESIM_REISSUE,
        RequestState.PENDING,
        world.order_id,
    )
    assert (request.requester, request.requested_by) == (ANN, f"token:{ANN}")
    assert request.expires_at == NOW + REQUEST_TTL
    assert left.events == [(world.org, "risk.swap_requested", f"sim:{world.order_iccid}")]
    assert left.changes == []  # the old SIM keeps working
    assert _sim(engine, world.org, world.order_iccid).state is SimState.ASSIGNED
    # One pending request per target.
    refused(engine, Conflict, _reissue(world, BOB))

    def approve(who: str) -> Call:
        return lambda c: swaps.approve(
            c, world.tools, world.org, request.id, actor=f"token:{who}", decider=who, now=NOW
        )

    refused(engine, SamePerson, approve(ANN))
    done, left = run(engine, approve(BOB))
    assert done.state is RequestState.APPROVED
    assert (done.decided_by, done.decided_at) == (f"token:{BOB}", NOW)
    assert done.result is not None
    new_iccid, new_order = done.result["new_iccid"], done.result["new_order_id"]
    assert done.result["old_iccid"] == world.order_iccid
    assert left.kinds[-1] == "risk.swap_approved"
    assert "sim.swap" in left.kinds
    assert (Topic.SIM, world.order_iccid) in left.topics
    assert _sim(engine, world.org, world.order_iccid).state is SimState.RETIRED
    with engine.begin() as conn:
        assert orders.get_order(conn, world.org, new_order).iccid == new_iccid
        assert orders.get_order(conn, world.org, world.order_id).replaced_by == new_order
        # Nothing of the activation code is kept with the request.
        again = swaps.get_request(conn, world.org, request.id, NOW)
    assert set(again.result or {}) == {"old_iccid", "new_iccid", "new_order_id"}
    # Decided once: a second approval or a rejection is refused.
    refused(engine, RequestClosed, approve("identity:cy"))


def test_a_pending_replacement_runs_on_approval(engine: Engine, world: World) -> None:
    _require_approval(engine, world.org)
    request, _ = run(engine, _replace(world))
    assert isinstance(request, SwapRequest)
    assert request.params == {"reason": "broken card", "new_iccid": world.spare}
    assert _sim(engine, world.org, world.iccid).state is SimState.ACTIVE
    assert _sim(engine, world.org, world.spare).state is SimState.STOCK
    done, left = run(
        engine,
        lambda c: swaps.approve(
            c, world.tools, world.org, request.id, actor="token:bob", decider=BOB, now=NOW
        ),
    )
    assert done.result == {"old_iccid": world.iccid, "new_iccid": world.spare}
    assert left.kinds[-1] == "risk.swap_approved"
    assert _sim(engine, world.org, world.spare).state is SimState.ACTIVE
    assert _sim(engine, world.org, world.iccid).state is SimState.RETIRED


def test_requests_that_could_never_succeed_are_refused_at_once(
    engine: Engine, world: World
) -> None:
    _require_approval(engine, world.org)
    refused(engine, NotFound, _replace(world, new="8944000000000000001"))
    refused(engine, Conflict, _replace(world, new=world.iccid))
    refused(engine, InvalidInput, _replace(world, new="123"))

    def other_org(conn: Connection) -> Any:
        return swaps.request_replace(
            conn,
            world.other,
            world.iccid,
            world.spare,
            actor="a",
            requester=ANN,
            reason="x",
            now=NOW,
        )

    refused(engine, NotFound, other_org)
    blank = lambda c: swaps.request_replace(  # noqa: E731
        c, world.org, world.iccid, world.spare, actor="a", requester=ANN, reason=" ", now=NOW
    )
    refused(engine, InvalidInput, blank)


def test_an_approval_whose_swap_is_refused_leaves_the_request_failed(
    engine: Engine, world: World
) -> None:
    _require_approval(engine, world.org)
    request, _ = run(engine, _reissue(world))
    # Meanwhile the order is cancelled: the re-issue can no longer be made.
    with engine.begin() as conn:
        esim.cancel_order(conn, world.org, world.order_id, actor="t", reason="left", now=NOW)
    done, left = run(
        engine,
        lambda c: swaps.approve(
            c, world.tools, world.org, request.id, actor="token:bob", decider=BOB, now=NOW
        ),
    )
    assert done.state is RequestState.FAILED
    assert done.error is not None
    assert "cancelled" in done.error
    assert left.kinds == ["risk.swap_failed"]
    assert left.changes == []
    with engine.begin() as conn:
        assert orders.get_order(conn, world.org, world.order_id).replaced_by is None
        assert swaps.get_request(conn, world.org, request.id, NOW).state is RequestState.FAILED


def test_reject_and_expiry(engine: Engine, world: World) -> None:
    _require_approval(engine, world.org)
    request, _ = run(engine, _replace(world))
    assert isinstance(request, SwapRequest)

    def reject(who: str, org: str | None = None) -> Call:
        return lambda c: swaps.reject(
            c, org or world.org, request.id, actor=who, decider=who, reason="fraud", now=NOW
        )

    refused(engine, NotFound, reject(BOB, world.other))
    done, left = run(engine, reject(ANN))  # the requester withdraws it
    assert done.state is RequestState.REJECTED
    assert done.result == {"reason": "fraud"}
    assert left.kinds == ["risk.swap_rejected"]
    assert left.changes == []
    assert _sim(engine, world.org, world.spare).state is SimState.STOCK
    # A new request for the same SIM may be made once the first is closed; it expires.
    second, _ = run(engine, _replace(world, new=world.spare2))
    late = NOW + REQUEST_TTL
    refused(
        engine,
        RequestClosed,
        lambda c: swaps.approve(
            c, world.tools, world.org, second.id, actor="b", decider=BOB, now=late
        ),
    )
    with engine.begin() as conn:
        assert swaps.get_request(conn, world.org, second.id, late).state is RequestState.EXPIRED
        assert swaps.get_request(conn, world.org, second.id, NOW).state is RequestState.PENDING
        with pytest.raises(NotFound):
            swaps.get_request(conn, world.other, second.id, NOW)
