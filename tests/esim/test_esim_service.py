"""eSIM orders against a real database (each test runs on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from ztsim.db import schema
from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.esim import repository as repo
from ztsim.esim import service
from ztsim.esim.codes import confirmation_hash, matching_id_hash
from ztsim.esim.config import EsimConfig
from ztsim.esim.orders import (
    MatchingIdUsed,
    NotificationPoint,
    OrderRefused,
    OrderState,
    ProgressStatus,
)
from ztsim.events import store as events
from ztsim.events.store import EventQuery
from ztsim.identifiers import Eid
from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind
from ztsim.inventory import repository as inventory
from ztsim.inventory import service as sims
from ztsim.inventory.lifecycle import SimState
from ztsim.inventory.models import SimKind
from ztsim.inventory.stock import parse_stock_csv
from ztsim.keys import rewrap_all
from ztsim.policy.store import facts
from ztsim.sealing import Sealer

from support.factories import make_sims, stock_csv
from support.leaks import LEAKS

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CONFIG = EsimConfig("smdp.example.test", "1.3.6.1.4.1.31746", timedelta(days=30))
EID = "89049032123451234512345678901235"
OTHER_EID = Eid.with_check_digits("890490321234512345123456789099").value
P, St = NotificationPoint, ProgressStatus


@dataclass
class Org:
    id: str
    alice: str
    bob: str
    iccids: list[str]


def _setup(engine: Engine, sealer: Sealer, slug: str = "acme", seed: int = 41) -> Org:
    with engine.begin() as conn:
        org = identities.create_org(conn, slug.title(), slug, NOW)
        people = [
            identities.create_identity(
                conn,
                org.id,
                kind=IdentityKind.USER,
                name=name,
                email=f"{name.lower()}@{slug}.test",
                external_id=None,
                now=NOW,
            ).id
            for name in ("Alice", "Bob")
        ]
        specs = make_sims(4, seed=seed)
        sims.import_stock(
            conn,
            sealer,
            org.id,
            parse_stock_csv(stock_csv(specs)),
            filename="esim.csv",
            kind=SimKind.ESIM,
            actor="test",
            now=NOW,
        )
    return Org(org.id, people[0], people[1], sorted(s.iccid for s in specs))


def _order(engine: Engine, sealer: Sealer, org: Org, who: str, **kw: object) -> service.Issued:
    with engine.begin() as conn:
        issued = service.create_order(
            conn,
            sealer,
            org.id,
            who,
            config=CONFIG,
            actor="test",
            now=NOW,
            rand=os.urandom,
            **kw,  # type: ignore[arg-type]
        )
    LEAKS.add_secret(issued.code.matching_id)
    if issued.confirmation_code:
        LEAKS.add_secret(issued.confirmation_code)
    return issued


def _report(
    engine: Engine,
    org: Org,
    iccid: str,
    point: NotificationPoint,
    status: ProgressStatus = St.SUCCESS,
    *,
    eid: str | None = EID,
    now: datetime = NOW,
) -> repo.Order:
    with engine.begin() as conn:
        return service.report_progress(
            conn, org.id, iccid=iccid, eid=eid, point=point, status=status, actor="smdp", now=now
        )


def test_an_order_takes_an_esim_from_stock_and_seals_its_matching_id(
    engine: Engine, sealer: Sealer
) -> None:
    org = _setup(engine, sealer)
    issued = _order(engine, sealer, org, org.alice, confirmation=True)
    order = issued.order
    assert order.iccid == org.iccids[0]
    assert order.state is OrderState.ISSUED
    assert order.expires_at == NOW + timedelta(days=30)
    assert order.confirmation_required
    assert str(issued.code) == f"1$smdp.example.test${issued.code.matching_id}$1.3.6.1.4.1.31746$1"
    assert issued.confirmation_code is not None
    with engine.begin() as conn:
        sim = inventory.get_sim(conn, org.id, order.iccid)
        row = (
            conn.execute(select(schema.esim_orders).where(schema.esim_orders.c.id == order.id))
            .one()
            ._mapping
        )
        assert service.activation_code(sealer, conn, order) == issued.code
        found = repo.find_by_matching_id_hash(conn, matching_id_hash(issued.code.matching_id))
    assert sim.state is SimState.ASSIGNED
    assert sim.identity_id == org.alice
    # Stored: a hash and a sealed copy, never the matching ID or the code in clear.
    assert issued.code.matching_id.encode() not in row["matching_id_sealed"]
    assert row["confirmation_hash"] == confirmation_hash(issued.confirmation_code)
    assert issued.confirmation_code.encode() not in repr(dict(row)).encode()
    assert found is not None
    assert found.id == order.id
    # Sealed to its row: under another order's id it does not open.
    with pytest.raises(Exception, match="does not open"):
        sealer.open(row["matching_id_sealed"], b"another-order")


def test_one_open_order_per_identity_and_stock_runs_out(engine: Engine, sealer: Sealer) -> None:
    org = _setup(engine, sealer)
    _order(engine, sealer, org, org.alice)
    with pytest.raises(service.OpenOrderExists):
        _order(engine, sealer, org, org.alice)
    _order(engine, sealer, org, org.bob, iccid=org.iccids[3])
    with engine.begin() as conn:
        carol = identities.create_identity(
            conn, org.id, kind=IdentityKind.USER, name="C", email=None, external_id=None, now=NOW
        ).id
        dave = identities.create_identity(
            conn, org.id, kind=IdentityKind.USER, name="D", email=None, external_id=None, now=NOW
        ).id
    with pytest.raises(Conflict, match="not an eSIM in stock"):
        _order(engine, sealer, org, carol, iccid=org.iccids[0])
    _order(engine, sealer, org, carol)
    _order(engine, sealer, org, dave)
    with engine.begin() as conn:
        eve = identities.create_identity(
            conn, org.id, kind=IdentityKind.USER, name="E", email=None, external_id=None, now=NOW
        ).id
    with pytest.raises(Conflict, match="no eSIM profile in stock"):
        _order(engine, sealer, org, eve)
    with pytest.raises(InvalidInput):
        _order(engine, sealer, org, eve, eid="1234")
    with pytest.raises(NotFound):
        _order(engine, sealer, org, "f" * 32)


def test_progress_to_enabled_binds_the_device_and_activates_the_sim(
    engine: Engine, sealer: Sealer
) -> None:
    org = _setup(engine, sealer)
    with engine.begin() as conn:
        device = sims.register_device(
            conn,
            org.id,
            imei="490154203237518",
            eid=EID,
            owner_id=org.alice,
            name="phone",
            actor="test",
            now=NOW,
        )
    order = _order(engine, sealer, org, org.alice).order
    assert _report(engine, org, order.iccid, P.ELIGIBILITY_CHECK).state is OrderState.ISSUED
    downloaded = _report(engine, org, order.iccid, P.BPP_DOWNLOAD)
    assert downloaded.state is OrderState.DOWNLOADED
    assert downloaded.eid == EID
    with engine.begin() as conn:
        assert inventory.get_sim(conn, org.id, order.iccid).device_id == device.id
    # The matching ID is spent.
    with pytest.raises(MatchingIdUsed):
        _report(engine, org, order.iccid, P.BPP_DOWNLOAD)
    with pytest.raises(OrderRefused, match="another eUICC"):
        _report(engine, org, order.iccid, P.BPP_INSTALLATION, eid=OTHER_EID)
    assert _report(engine, org, order.iccid, P.BPP_INSTALLATION).state is OrderState.INSTALLED
    assert _report(engine, org, order.iccid, P.PROFILE_ENABLED, eid=None).state is (
        OrderState.ENABLED
    )
    with engine.begin() as conn:
        sim = inventory.get_sim(conn, org.id, order.iccid)
        log, _ = events.query(conn, org.id, EventQuery(subject=f"sim:{order.iccid}"))
    assert sim.state is SimState.ACTIVE
    kinds = [e.kind for e in reversed(log)]
    assert kinds[:2] == ["sim.assign", "esim.order_created"]
    assert "sim.binding_changed" in kinds
    assert kinds.count("esim.progress") == 4
    assert kinds[-2:] == ["sim.activate", "esim.progress"]
    with pytest.raises(OrderRefused, match="enabled"):
        _report(engine, org, order.iccid, P.PROFILE_ENABLED)


def test_an_eid_of_another_employees_device_is_refused(engine: Engine, sealer: Sealer) -> None:
    org = _setup(engine, sealer)
    with engine.begin() as conn:
        sims.register_device(
            conn,
            org.id,
            imei="490154203237518",
            eid=EID,
            owner_id=org.bob,
            name="bob's",
            actor="test",
            now=NOW,
        )
    order = _order(engine, sealer, org, org.alice).order
    with pytest.raises(OrderRefused, match="another identity"):
        _report(engine, org, order.iccid, P.BPP_DOWNLOAD)
    bound = _order(engine, sealer, org, org.bob, eid=OTHER_EID).order
    assert bound.eid == OTHER_EID
    with pytest.raises(OrderRefused, match="another eUICC"):
        _report(engine, org, bound.iccid, P.BPP_DOWNLOAD, eid=EID)


def test_expired_and_cancelled_orders_refuse_callbacks(engine: Engine, sealer: Sealer) -> None:
    org = _setup(engine, sealer)
    expiring = _order(engine, sealer, org, org.alice).order
    late = NOW + timedelta(days=30)
    with pytest.raises(OrderRefused, match="expired"):
        _report(engine, org, expiring.iccid, P.BPP_DOWNLOAD, now=late)
    with engine.begin() as conn:
        assert repo.get_order(conn, org.id, expiring.id).state is OrderState.ISSUED
        with pytest.raises(OrderRefused, match="expired"):
            service.cancel_order(conn, org.id, expiring.id, actor="t", reason="", now=late)
    cancelled = _order(engine, sealer, org, org.bob).order
    with engine.begin() as conn:
        done = service.cancel_order(
            conn, org.id, cancelled.id, actor="t", reason="left the company", now=NOW
        )
        sim = inventory.get_sim(conn, org.id, cancelled.iccid)
    assert done.state is OrderState.CANCELLED
    # Its code was handed out: the SIM never goes back to stock.
    assert sim.state is SimState.RETIRED
    for point in NotificationPoint:
        with pytest.raises(OrderRefused, match="cancelled"):
            _report(engine, org, cancelled.iccid, point)
    with pytest.raises(NotFound):
        _report(engine, org, org.iccids[3], P.BPP_DOWNLOAD)


def test_reissue_retires_the_old_profile_and_records_a_sim_swap(
    engine: Engine, sealer: Sealer
) -> None:
    org = _setup(engine, sealer)
    first = _order(engine, sealer, org, org.alice, confirmation=True)
    _report(engine, org, first.order.iccid, P.PROFILE_ENABLED)
    with engine.begin() as conn, pytest.raises(InvalidInput, match="reason"):
        service.reissue_order(
            conn, sealer, org.id, first.order.id, config=CONFIG, actor="admin", reason=" ",
            now=NOW, rand=os.urandom,
        )  # fmt: skip
    with engine.begin() as conn:
        second = service.reissue_order(
            conn, sealer, org.id, first.order.id, config=CONFIG, actor="admin",
            reason="phone lost", now=NOW, rand=os.urandom,
        )  # fmt: skip
        LEAKS.add_secret(second.code.matching_id)
        assert second.confirmation_code is not None
        LEAKS.add_secret(second.confirmation_code)
        old = repo.get_order(conn, org.id, first.order.id)
        old_sim = inventory.get_sim(conn, org.id, first.order.iccid)
        new_sim = inventory.get_sim(conn, org.id, second.order.iccid)
        swaps, _ = events.query(conn, org.id, EventQuery(kind="sim.swap"))
        retire, _ = events.query(conn, org.id, EventQuery(kind="sim.retire"))
        signals = facts.signals_of_sims(conn, [first.order.iccid, second.order.iccid])
    assert second.code.matching_id != first.code.matching_id
    # Policies see the swap (`sim.swap_age`) on the SIM now in service only.
    assert signals[second.order.iccid].swapped_at == NOW
    assert signals[first.order.iccid].swapped_at is None
    assert second.order.replaces_id == old.id
    assert old.replaced_by == second.order.id
    assert old.state is OrderState.CANCELLED
    assert old_sim.state is SimState.RETIRED
    assert new_sim.state is SimState.ASSIGNED
    assert new_sim.identity_id == org.alice
    assert retire[0].reason == "phone lost"
    assert len(swaps) == 1
    assert swaps[0].subject == f"sim:{second.order.iccid}"
    assert swaps[0].payload == {
        "old_iccid": first.order.iccid,
        "new_iccid": second.order.iccid,
        "identity_id": org.alice,
    }
    assert swaps[0].reason == "phone lost"
    # The replaced order is closed: reports and a second re-issue are refused.
    with pytest.raises(OrderRefused):
        _report(engine, org, first.order.iccid, P.PROFILE_ENABLED)
    with engine.begin() as conn, pytest.raises(OrderRefused):
        service.reissue_order(
            conn, sealer, org.id, first.order.id, config=CONFIG, actor="admin", reason="again",
            now=NOW, rand=os.urandom,
        )  # fmt: skip


def test_pack_pages_only_for_usable_orders(engine: Engine, sealer: Sealer) -> None:
    org = _setup(engine, sealer)
    a = _order(engine, sealer, org, org.alice)
    b = _order(engine, sealer, org, org.bob)
    _report(engine, org, b.order.iccid, P.BPP_DOWNLOAD)
    with engine.begin() as conn:
        bulk = service.pack_pages(conn, sealer, org.id, [org.alice, org.bob], NOW)
        page = service.pack_page(conn, sealer, org.id, a.order.id, NOW)
        with pytest.raises(OrderRefused, match="downloaded"):
            service.pack_page(conn, sealer, org.id, b.order.id, NOW)
        expired = service.pack_pages(conn, sealer, org.id, [org.alice], NOW + timedelta(days=31))
    assert [p.code for p in bulk.pages] == [a.code]
    assert bulk.skipped == [org.bob]
    assert page.employee == "Alice"
    assert page.org == "Acme"
    assert page.code == a.code
    assert expired.pages == []


def test_orders_are_org_scoped(engine: Engine, sealer: Sealer) -> None:
    acme = _setup(engine, sealer)
    other = _setup(engine, sealer, "other", seed=42)
    order = _order(engine, sealer, acme, acme.alice).order
    with engine.begin() as conn:
        with pytest.raises(NotFound):
            repo.get_order(conn, other.id, order.id)
        with pytest.raises(NotFound):
            service.cancel_order(conn, other.id, order.id, actor="x", reason="", now=NOW)
        assert repo.list_orders(conn, other.id, repo.OrderFilter())[0] == []
        assert [o.id for o in repo.list_orders(conn, acme.id, repo.OrderFilter())[0]] == [order.id]
    with pytest.raises(NotFound):
        _report(engine, other, order.iccid, P.BPP_DOWNLOAD)


def test_events_never_carry_the_secrets(engine: Engine, sealer: Sealer) -> None:
    org = _setup(engine, sealer)
    issued = _order(engine, sealer, org, org.alice, confirmation=True)
    _report(engine, org, issued.order.iccid, P.BPP_DOWNLOAD)
    with engine.begin() as conn:
        log, _ = events.query(conn, org.id, EventQuery())
    text = json.dumps([(e.reason, e.payload) for e in log])
    assert issued.order.id in text
    assert issued.code.matching_id not in text
    assert issued.confirmation_code is not None
    assert issued.confirmation_code not in text


def test_key_rotation_reseals_matching_ids(engine: Engine, sealer: Sealer) -> None:
    org = _setup(engine, sealer)
    issued = _order(engine, sealer, org, org.alice)
    new_key = bytes(range(100, 132))
    rotated = Sealer(new_key, others=[bytes(range(32))])
    assert rewrap_all(engine, rotated) >= 5  # 4 SIMs and the order
    with engine.begin() as conn:
        order = repo.get_order(conn, org.id, issued.order.id)
        # Only the new key is needed now.
        assert service.activation_code(Sealer(new_key), conn, order) == issued.code
