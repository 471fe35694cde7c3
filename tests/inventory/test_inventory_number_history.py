"""A number's history: what records a change (an assignment, a device binding, a first
attach), and the reads the CAMARA APIs and the notifier make (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, func, select

from ztsim.db import schema
from ztsim.errors import InvalidInput
from ztsim.identity import repository as identities
from ztsim.inventory import number_history as history
from ztsim.inventory import service
from ztsim.inventory.lifecycle import SimAction
from ztsim.inventory.models import SimKind
from ztsim.inventory.number_history import ChangeKind, NumberChange
from ztsim.inventory.stock import parse_stock_csv
from ztsim.sealing import Sealer

from support.factories import SimSpec, activate, make_sims, stock_csv
from tests_clock import NOW

IMEI, OTHER_IMEI = "490154203237518", "352099001761481"


@dataclasses.dataclass
class World:
    org: str
    other: str
    ann: str  # holds `sim`
    sim: SimSpec  # active, with a number
    plain: SimSpec  # in stock, without a number
    stocked: SimSpec  # in stock, with a number
    other_sim: SimSpec  # active, of the other org


@pytest.fixture
def world(engine: Engine, sealer: Sealer) -> World:
    sim, plain, stocked, other_sim = make_sims(4, seed=23)
    plain = dataclasses.replace(plain, msisdn=None)
    with engine.begin() as conn:
        org = identities.create_org(conn, "Acme", "acme", NOW).id
        other = identities.create_org(conn, "Other", "other", NOW).id
        ann = activate(conn, sealer, org, sim, NOW)
        activate(conn, sealer, other, other_sim, NOW)
        service.import_stock(
            conn,
            sealer,
            org,
            parse_stock_csv(stock_csv([plain, stocked])),
            filename="stock.csv",
            kind=SimKind.PHYSICAL,
            actor="test",
            now=NOW,
        )
    return World(org, other, ann, sim, plain, stocked, other_sim)


def _number(spec: SimSpec) -> str:
    assert spec.msisdn is not None
    return spec.msisdn


def _all(engine: Engine, org: str, msisdn: str) -> list[NumberChange]:
    with engine.connect() as conn:
        return history.changes(conn, org, msisdn)[0]


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(schema.number_changes)).scalar_one()
        )


def _assign(conn: Connection, org: str, iccid: str, holder: str) -> None:
    service.change_state(
        conn, org, iccid, SimAction.ASSIGN, actor="admin", reason="", now=NOW, identity_id=holder
    )


def test_an_assignment_is_the_numbers_first_sim(engine: Engine, world: World) -> None:
    [first] = _all(engine, world.org, _number(world.sim))
    assert (first.kind, first.previous, first.current) == (ChangeKind.SIM, None, world.sim.iccid)
    assert (first.iccid, first.actor, first.at, first.org_id) == (
        world.sim.iccid,
        "test",
        NOW,
        world.org,
    )
    before = _count(engine)
    with engine.begin() as conn:
        _assign(conn, world.org, world.plain.iccid, world.ann)  # no number: nothing to record
    assert _count(engine) == before
    with engine.begin() as conn:
        _assign(conn, world.org, world.stocked.iccid, world.ann)
    [new] = _all(engine, world.org, _number(world.stocked))
    assert (new.previous, new.current, new.actor) == (None, world.stocked.iccid, "admin")


def _device(engine: Engine, org: str, imei: str) -> str:
    with engine.begin() as conn:
        return service.register_device(
            conn, org, imei=imei, eid=None, owner_id=None, name="phone", actor="t", now=NOW
        ).id


def _bind(engine: Engine, org: str, iccid: str, device: str | None, at: int) -> None:
    with engine.begin() as conn:
        service.set_binding(
            conn, org, iccid, device, actor="admin", reason="r", now=NOW + timedelta(minutes=at)
        )


def test_a_binding_records_the_numbers_device_change(engine: Engine, world: World) -> None:
    one, two = _device(engine, world.org, IMEI), _device(engine, world.org, OTHER_IMEI)
    iccid, number = world.sim.iccid, _number(world.sim)
    _bind(engine, world.org, iccid, one, 1)
    _bind(engine, world.org, iccid, two, 2)
    _bind(engine, world.org, iccid, None, 3)  # unbinding records nothing
    _bind(engine, world.org, iccid, two, 4)  # back in the device it was last in: no swap
    _bind(engine, world.org, iccid, one, 5)
    with engine.connect() as conn:
        found, _ = history.changes(conn, world.org, number, kind=ChangeKind.DEVICE)
    assert [(c.previous, c.current, c.at) for c in found] == [
        (OTHER_IMEI, IMEI, NOW + timedelta(minutes=5)),
        (IMEI, OTHER_IMEI, NOW + timedelta(minutes=2)),
        (None, IMEI, NOW + timedelta(minutes=1)),
    ]
    assert {c.iccid for c in found} == {iccid}
    before = _count(engine)
    _bind(engine, world.org, world.plain.iccid, one, 6)  # a SIM without a number
    assert _count(engine) == before


def test_a_first_attach_records_the_first_device(engine: Engine, world: World) -> None:
    with engine.begin() as conn:
        identities.update_org(conn, world.org, tofu_binding=True)
        service.bind_on_first_attach(conn, world.org, world.sim.iccid, IMEI, now=NOW)
    with engine.connect() as conn:
        change = history.latest(conn, world.org, _number(world.sim), ChangeKind.DEVICE)
    assert change is not None
    assert (change.previous, change.current, change.actor) == (None, IMEI, "system:tofu")


def _record(conn: Connection, org: str, msisdn: str, kind: ChangeKind, at: int, n: int) -> None:
    history.record(
        conn,
        org,
        msisdn,
        kind,
        iccid=f"8944{n:016d}",
        previous=None,
        current=f"{n}",
        actor="t",
        now=NOW + timedelta(hours=at),
    )


def test_latest_and_first_go_by_time(engine: Engine, world: World) -> None:
    number = "+4930123456"  # either form names the same number
    with engine.begin() as conn:
        for n, at in enumerate([5, 9, 7]):
            _record(conn, world.org, number, ChangeKind.DEVICE, at, n)
        latest = history.latest(conn, world.org, "4930123456", ChangeKind.DEVICE)
        first = history.first(conn, world.org, number, ChangeKind.DEVICE)
        assert history.latest(conn, world.org, number, ChangeKind.SIM) is None
        assert history.first(conn, world.other, number, ChangeKind.DEVICE) is None
    assert latest is not None
    assert first is not None
    assert (latest.current, latest.at, latest.msisdn) == ("1", NOW + timedelta(hours=9), number[1:])
    assert (first.current, first.at) == ("0", NOW + timedelta(hours=5))


def test_changes_page_newest_first_by_kind_and_org(engine: Engine, world: World) -> None:
    number = "4930123456"
    with engine.begin() as conn:
        for n in range(5):
            kind = ChangeKind.SIM if n % 2 else ChangeKind.DEVICE
            _record(conn, world.org, number, kind, n, n)
        _record(conn, world.other, number, ChangeKind.SIM, 9, 9)
    seen: list[str] = []
    cursor = None
    with engine.connect() as conn:
        while True:
            page, cursor = history.changes(conn, world.org, number, limit=2, cursor=cursor)
            assert len(page) <= 2
            seen += [c.current for c in page]
            if cursor is None:
                break
        sims, _ = history.changes(conn, world.org, number, kind=ChangeKind.SIM)
        theirs, _ = history.changes(conn, world.other, "+" + number)
        with pytest.raises(InvalidInput):
            history.changes(conn, world.org, number, limit=0)
        with pytest.raises(InvalidInput):
            history.changes(conn, world.org, number, cursor="nonsense")
    assert seen == ["4", "3", "2", "1", "0"]
    assert [c.current for c in sims] == ["3", "1"]
    assert [(c.current, c.org_id) for c in theirs] == [("9", world.other)]


def test_since_reads_every_org_in_record_order(engine: Engine, world: World) -> None:
    with engine.connect() as conn:
        start = max(c.id for c in history.since(conn, 0, 1000))
    with engine.begin() as conn:
        _record(conn, world.org, "4930123456", ChangeKind.SIM, 2, 1)
        _record(conn, world.other, "4930999999", ChangeKind.DEVICE, 1, 2)
        _record(conn, world.org, "4930123456", ChangeKind.DEVICE, 3, 3)
    with engine.connect() as conn:
        first_two = history.since(conn, start, 2)
        rest = history.since(conn, first_two[-1].id, 10)
    assert [(c.org_id, c.current) for c in first_two + rest] == [
        (world.org, "1"),
        (world.other, "2"),
        (world.org, "3"),
    ]
    assert first_two[0].id < first_two[1].id < rest[0].id


def test_the_number_on_a_sim_and_the_sim_of_a_number(engine: Engine, world: World) -> None:
    with engine.connect() as conn:
        assert history.number_of(conn, world.org, world.sim.iccid) == world.sim.msisdn
        assert history.number_of(conn, world.org, world.plain.iccid) is None
        # Another org's SIM, and its number, are not this org's to see.
        assert history.number_of(conn, world.org, world.other_sim.iccid) is None
        assert history.sim_of(conn, world.org, "+" + _number(world.sim)) == world.sim.iccid
        assert history.sim_of(conn, world.org, _number(world.other_sim)) is None
        assert history.sim_of(conn, world.other, _number(world.other_sim)) == world.other_sim.iccid


@given(st.from_regex(r"[1-9][0-9]{0,14}", fullmatch=True))
def test_both_forms_of_a_number_store_as_its_digits(number: str) -> None:
    assert history.digits("+" + number) == history.digits(number) == number


@given(st.text(max_size=20))
def test_anything_else_is_refused_as_input(text: str) -> None:
    stripped = text.removeprefix("+")
    if stripped.isascii() and stripped.isdigit() and 0 < len(stripped) <= 15 and stripped[0] != "0":
        assert history.digits(text) == stripped
    else:
        with pytest.raises(InvalidInput):
            history.digits(text)
