"""An eSIM re-issue keeps the subscriber's number: it moves to the new profile's SIM and
the number's history says so; the swap holds for the org's cooling-off (SQLite and
PostgreSQL)."""

from __future__ import annotations

import dataclasses
import os
from datetime import timedelta

from sqlalchemy import Connection, Engine, insert, select

from ztsim.db import schema
from ztsim.esim import service
from ztsim.esim.config import EsimConfig
from ztsim.events import store as events
from ztsim.events.store import EventQuery
from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind
from ztsim.inventory import number_history as history
from ztsim.inventory import service as sims
from ztsim.inventory.models import SimKind
from ztsim.inventory.number_history import ChangeKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.sealing import Sealer

from support.factories import SimSpec, make_sims, stock_csv
from support.leaks import LEAKS
from tests_clock import NOW

CONFIG = EsimConfig("smdp.example.test", None, timedelta(days=30))


def _org(engine: Engine, sealer: Sealer, specs: list[SimSpec]) -> tuple[str, str]:
    """An org with `specs` as eSIM stock and one person; (org, person)."""
    with engine.begin() as conn:
        org = identities.create_org(conn, "Acme", "acme", NOW).id
        sims.import_stock(
            conn,
            sealer,
            org,
            parse_stock_csv(stock_csv(specs)),
            filename="esim.csv",
            kind=SimKind.ESIM,
            actor="test",
            now=NOW,
        )
        ann = identities.create_identity(
            conn, org, kind=IdentityKind.USER, name="Ann", email=None, external_id=None, now=NOW
        ).id
    return org, ann


def _order(conn: Connection, sealer: Sealer, org: str, who: str) -> service.Issued:
    issued = service.create_order(
        conn, sealer, org, who, config=CONFIG, actor="admin", now=NOW, rand=os.urandom
    )
    LEAKS.add_secret(issued.code.matching_id)
    return issued


def _reissue(conn: Connection, sealer: Sealer, org: str, order_id: str) -> service.Issued:
    issued = service.reissue_order(
        conn,
        sealer,
        org,
        order_id,
        config=CONFIG,
        actor="admin",
        reason="phone lost",
        now=NOW,
        rand=os.urandom,
    )
    LEAKS.add_secret(issued.code.matching_id)
    return issued


def _swap_recent_until(conn: Connection, iccid: str) -> object:
    s = schema.sims
    return conn.execute(select(s.c.swap_recent_until).where(s.c.iccid == iccid)).scalar()


def test_a_reissue_moves_the_number_to_the_new_profile(engine: Engine, sealer: Sealer) -> None:
    first_spec, second_spec = make_sims(2, seed=61)
    assert first_spec.msisdn is not None
    assert second_spec.msisdn is not None
    number, own = first_spec.msisdn, second_spec.msisdn
    org, ann = _org(engine, sealer, [first_spec, second_spec])
    with engine.begin() as conn:
        first = _order(conn, sealer, org, ann)
        second = _reissue(conn, sealer, org, first.order.id)
    old, new = first.order.iccid, second.order.iccid
    with engine.connect() as conn:
        assert history.number_of(conn, org, new) == number
        assert history.number_of(conn, org, old) is None
        # The new profile's own number went back: on no SIM, with no history.
        assert history.sim_of(conn, org, own) is None
        assert history.changes(conn, org, own)[0] == []
        changes, _ = history.changes(conn, org, number, kind=ChangeKind.SIM)
        [moved], _ = events.query(conn, org, EventQuery(kind="sim.number_moved"))
        # No risk settings: 24 hours of `sim.swap_recent`.
        assert _swap_recent_until(conn, new) == NOW + timedelta(hours=24)
        assert _swap_recent_until(conn, old) is None
    assert [(c.previous, c.current, c.actor) for c in changes] == [
        (old, new, "admin"),
        (None, old, "admin"),  # the first order: a new subscription
    ]
    assert moved.payload == {
        "msisdn": number,
        "from_iccid": old,
        "to_iccid": new,
        "released_msisdn": own,
    }


def test_a_profile_without_a_number_moves_nothing(engine: Engine, sealer: Sealer) -> None:
    first_spec, second_spec = make_sims(2, seed=62)
    first_spec = dataclasses.replace(first_spec, msisdn=None)
    assert second_spec.msisdn is not None
    org, ann = _org(engine, sealer, [first_spec, second_spec])
    with engine.begin() as conn:
        conn.execute(
            insert(schema.risk_settings).values(
                org_id=org,
                approval_required=False,
                cooling_off_s=600,
                monitored_days=120,
                detectors={},
                updated_by="admin",
                updated_at=NOW,
            )
        )
        first = _order(conn, sealer, org, ann)
        second = _reissue(conn, sealer, org, first.order.id)
    new = second.order.iccid
    with engine.connect() as conn:
        assert events.query(conn, org, EventQuery(kind="sim.number_moved"))[0] == []
        # The new profile keeps its own number: a new subscription, not a move.
        assert history.number_of(conn, org, new) == second_spec.msisdn
        [change], _ = history.changes(conn, org, second_spec.msisdn)
        assert _swap_recent_until(conn, new) == NOW + timedelta(minutes=10)
    assert (change.previous, change.current) == (None, new)


def test_the_reissued_profile_on_the_same_phone_is_no_device_swap(
    engine: Engine, sealer: Sealer
) -> None:
    first_spec, second_spec = make_sims(2, seed=63)
    assert first_spec.msisdn is not None
    org, ann = _org(engine, sealer, [first_spec, second_spec])
    imei = "490154203237518"
    with engine.begin() as conn:
        phone = sims.register_device(
            conn, org, imei=imei, eid=None, owner_id=ann, name="", actor="a", now=NOW
        ).id
        first = _order(conn, sealer, org, ann)
        sims.set_binding(conn, org, first.order.iccid, phone, actor="a", reason="r", now=NOW)
        second = _reissue(conn, sealer, org, first.order.id)
        sims.set_binding(conn, org, second.order.iccid, phone, actor="a", reason="r", now=NOW)
    with engine.connect() as conn:
        devices, _ = history.changes(conn, org, first_spec.msisdn, kind=ChangeKind.DEVICE)
    assert [(c.previous, c.current, c.iccid) for c in devices] == [(None, imei, first.order.iccid)]
