"""eSIM use cases reach the planes through the SIM changes they make: an order assigns a
SIM, an enabled profile binds and activates it, a cancel and a re-issue retire one. Each
leaves its events and SIM outbox rows, published once at its end; a refused one leaves
none (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine

from ztsim.errors import InvalidInput, NotFound
from ztsim.esim import service
from ztsim.esim.config import EsimConfig
from ztsim.esim.orders import NotificationPoint, OrderRefused, ProgressStatus
from ztsim.feed.change import Topic
from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind
from ztsim.inventory import service as sims
from ztsim.inventory.models import SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.sealing import Sealer

from support.factories import make_sims, stock_csv
from support.leaks import LEAKS
from support.traces import Left, refused, run
from tests_clock import NOW

CONFIG = EsimConfig("smdp.example.test", None, timedelta(days=30))
EID = "89049032123451234512345678901235"


@dataclass
class World:
    org: str
    other: str
    ann: str
    cy: str  # with a phone whose eUICC is EID
    stranger: str  # of the other org


def _person(conn: Connection, org: str, name: str) -> str:
    return identities.create_identity(
        conn, org, kind=IdentityKind.USER, name=name, email=None, external_id=None, now=NOW
    ).id


@pytest.fixture
def world(engine: Engine, sealer: Sealer) -> World:
    with engine.begin() as conn:
        org = identities.create_org(conn, "Acme", "acme", NOW).id
        other = identities.create_org(conn, "Other", "other", NOW).id
        sims.import_stock(
            conn,
            sealer,
            org,
            parse_stock_csv(stock_csv(make_sims(4, seed=9))),
            filename="esim.csv",
            kind=SimKind.ESIM,
            actor="test",
            now=NOW,
        )
        ann, cy = _person(conn, org, "Ann"), _person(conn, org, "Cy")
        sims.register_device(
            conn, org, imei="490154203237518", eid=EID, owner_id=cy, name="", actor="t", now=NOW
        )
        return World(org, other, ann, cy, _person(conn, other, "Stranger"))


def _run(engine: Engine, call: Callable[[Connection], Any]) -> tuple[Any, Left]:
    """`run`, with the matching IDs it issued watched for leaks."""
    result, left = run(engine, call)
    for issued in result.issued if isinstance(result, service.BulkIssued) else [result]:
        if isinstance(issued, service.Issued):
            LEAKS.add_secret(issued.code.matching_id)
    return result, left


def _order(sealer: Sealer, org: str, who: str) -> Callable[[Connection], Any]:
    return lambda c: service.create_order(
        c, sealer, org, who, config=CONFIG, actor="admin", now=NOW, rand=os.urandom
    )


def _reissue(sealer: Sealer, org: str, order_id: str, reason: str) -> Callable[[Connection], Any]:
    return lambda c: service.reissue_order(
        c,
        sealer,
        org,
        order_id,
        config=CONFIG,
        actor="admin",
        reason=reason,
        now=NOW,
        rand=os.urandom,
    )


def test_an_order_assigns_its_sim_and_publishes_it(
    engine: Engine, sealer: Sealer, world: World
) -> None:
    issued, left = _run(engine, _order(sealer, world.org, world.ann))
    iccid = issued.order.iccid
    assert left.kinds == ["sim.assign", "esim.order_created"]
    assert left.topics == [(Topic.SIM, iccid)]
    assert left.payloads == [{"state": "assigned"}]
    # A second open order for Ann, or an order for another org's identity: nothing.
    refused(engine, service.OpenOrderExists, _order(sealer, world.org, world.ann))
    refused(engine, NotFound, _order(sealer, world.org, world.stranger))


def test_an_enabled_profile_binds_and_activates_its_sim(
    engine: Engine, sealer: Sealer, world: World
) -> None:
    issued, _ = _run(engine, _order(sealer, world.org, world.cy))
    iccid = issued.order.iccid

    def report(point: NotificationPoint, now: Any = NOW) -> Callable[[Connection], Any]:
        return lambda c: service.report_progress(
            c,
            world.org,
            iccid=iccid,
            eid=EID,
            point=point,
            status=ProgressStatus.SUCCESS,
            actor="smdp",
            now=now,
        )

    _order_now, left = _run(engine, report(NotificationPoint.PROFILE_ENABLED))
    assert left.kinds == ["sim.binding_changed", "sim.activate", "esim.progress"]
    assert left.topics == [(Topic.SIM, iccid), (Topic.SIM, iccid)]
    assert left.payloads == [{}, {"state": "active"}]
    # Once enabled, a report is refused and changes nothing.
    refused(engine, OrderRefused, report(NotificationPoint.PROFILE_ENABLED))


def test_cancel_retires_the_sim_and_publishes_it(
    engine: Engine, sealer: Sealer, world: World
) -> None:
    issued, _ = _run(engine, _order(sealer, world.org, world.ann))

    def cancel(org: str) -> Callable[[Connection], Any]:
        return lambda c: service.cancel_order(
            c, org, issued.order.id, actor="admin", reason="left", now=NOW
        )

    refused(engine, NotFound, cancel(world.other))  # another org's order
    _done, left = _run(engine, cancel(world.org))
    assert left.kinds == ["sim.retire", "esim.order_cancelled"]
    assert left.topics == [(Topic.SIM, issued.order.iccid)]
    assert left.payloads == [{"state": "retired"}]
    refused(engine, OrderRefused, cancel(world.org))  # cancelled already


def test_reissue_retires_the_old_sim_and_assigns_a_new_one(
    engine: Engine, sealer: Sealer, world: World
) -> None:
    first, _ = _run(engine, _order(sealer, world.org, world.ann))
    refused(engine, InvalidInput, _reissue(sealer, world.org, first.order.id, " "))
    refused(engine, NotFound, _reissue(sealer, world.other, first.order.id, "lost"))
    second, left = _run(engine, _reissue(sealer, world.org, first.order.id, "lost"))
    old, new = first.order.iccid, second.order.iccid
    assert left.kinds == [
        "sim.retire",
        "sim.assign",
        "esim.order_created",
        "sim.number_moved",  # the subscriber keeps their number on the new profile
        "esim.order_reissued",
        "sim.swap",
    ]
    assert left.topics == [(Topic.SIM, old), (Topic.SIM, new)]
    assert left.payloads == [{"state": "retired"}, {"state": "assigned"}]
    assert [c.seq for c in left.changes] == sorted(c.seq for c in left.changes)


def test_a_bulk_order_skips_open_orders_and_publishes_the_rest(
    engine: Engine, sealer: Sealer, world: World
) -> None:
    first, _ = _run(engine, _order(sealer, world.org, world.ann))
    bulk, left = _run(
        engine,
        lambda c: service.create_orders(
            c,
            sealer,
            world.org,
            [world.ann, world.cy],
            config=CONFIG,
            actor="cli:admin",
            now=NOW,
            rand=os.urandom,
        ),
    )
    assert bulk.skipped == [world.ann]
    [issued] = bulk.issued
    assert issued.order.identity_id == world.cy
    assert issued.order.iccid != first.order.iccid
    assert left.kinds == ["sim.assign", "esim.order_created"]
    assert left.topics == [(Topic.SIM, issued.order.iccid)]
    # Any other refusal refuses the whole batch.
    refused(
        engine,
        NotFound,
        lambda c: service.create_orders(
            c,
            sealer,
            world.org,
            [world.stranger],
            config=CONFIG,
            actor="cli:admin",
            now=NOW,
            rand=os.urandom,
        ),
    )
