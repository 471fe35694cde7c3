"""Inventory operations against a real database (each test runs on SQLite and PostgreSQL)."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

from ztsim.db import schema
from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.events import store as events
from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind
from ztsim.inventory import repository as repo
from ztsim.inventory import service
from ztsim.inventory.lifecycle import IllegalTransition, SimAction, SimState
from ztsim.inventory.models import SimKind, StockImport
from ztsim.inventory.stock import parse_stock_csv
from ztsim.sealing import Sealer

from support.factories import activate, make_sims, stock_csv

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _org(engine: Engine, slug: str = "acme") -> str:
    with engine.begin() as conn:
        return identities.create_org(conn, slug.title(), slug, NOW).id


def _import(engine: Engine, sealer: Sealer, org_id: str, text: str) -> StockImport:
    with engine.begin() as conn:
        return service.import_stock(
            conn,
            sealer,
            org_id,
            parse_stock_csv(text),
            filename="batch.csv",
            kind=SimKind.ESIM,
            actor="test",
            now=NOW,
        )


def _count_sims(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(schema.sims)).scalar_one()


def test_import_good_file(engine: Engine, sealer: Sealer) -> None:
    org = _org(engine)
    specs = make_sims(20)
    record = _import(engine, sealer, org, stock_csv(specs))
    assert (record.status, record.rows, record.imported, record.errors) == ("imported", 20, 20, [])
    with engine.connect() as conn:
        sims, _ = repo.list_sims(conn, org, repo.SimFilter(), limit=100)
        evs, _ = events.query(conn, org, events.EventQuery(kind="stock.imported"))
    assert [s.iccid for s in sims] == sorted(s.iccid for s in specs)
    assert {s.state for s in sims} == {SimState.STOCK}
    assert {s.kind for s in sims} == {SimKind.ESIM}
    assert evs[0].payload["imported"] == 20


def test_only_ciphertext_is_stored_and_it_opens_with_the_row(
    engine: Engine, sealer: Sealer
) -> None:
    org = _org(engine)
    specs = make_sims(3)
    _import(engine, sealer, org, stock_csv(specs))
    with engine.connect() as conn:
        rows = {r.iccid: r for r in conn.execute(select(schema.sims)).all()}
    for spec in specs:
        row = rows[spec.iccid]
        stored = b"".join(v for v in (row.k_sealed, row.opc_sealed, row.pin_sealed, row.puk_sealed))
        assert spec.k not in stored
        assert spec.opc not in stored
        assert spec.k.hex().encode() not in stored
        aad = spec.iccid.encode()
        assert sealer.open(row.k_sealed, aad) == spec.k
        assert sealer.open(row.opc_sealed, aad) == spec.opc
        assert sealer.open(row.puk_sealed, aad) == spec.puk.encode()


def test_bad_file_imports_nothing_and_reports_every_bad_row(engine: Engine, sealer: Sealer) -> None:
    org = _org(engine)
    specs = make_sims(10)
    lines = stock_csv(specs).splitlines()
    lines[3] = lines[3].replace(specs[2].imsi, "1" * 16)
    lines[8] = lines[8].replace(specs[7].opc.hex(), "0" * 31)
    record = _import(engine, sealer, org, "\n".join(lines))
    assert record.status == "rejected"
    assert record.imported == 0
    assert [(e["line"], e["field"]) for e in record.errors] == [(4, "imsi"), (9, "opc")]
    assert _count_sims(engine) == 0
    with engine.connect() as conn:
        assert repo.get_import(conn, org, record.id).status == "rejected"


def test_duplicates_against_the_database_reject_the_file(engine: Engine, sealer: Sealer) -> None:
    org = _org(engine)
    other = _org(engine, "other")
    first = make_sims(5)
    _import(engine, sealer, org, stock_csv(first))
    # Overlaps the first file by one SIM; it is another org's, and still a duplicate.
    second = make_sims(3, start=4)
    record = _import(engine, sealer, other, stock_csv(second))
    assert record.status == "rejected"
    assert [(e["line"], e["field"], e["message"]) for e in record.errors] == [
        (2, "iccid", "ICCID, IMSI and MSISDN are already registered")
    ]
    assert _count_sims(engine) == 5


def _active_sim(engine: Engine, sealer: Sealer, org: str) -> tuple[str, str]:
    spec = make_sims(1)[0]
    with engine.begin() as conn:
        return spec.iccid, activate(conn, sealer, org, spec, NOW)


def test_transitions_record_actor_and_reason(engine: Engine, sealer: Sealer) -> None:
    org = _org(engine)
    iccid, person = _active_sim(engine, sealer, org)
    with engine.begin() as conn:
        sim = service.change_state(
            conn, org, iccid, SimAction.SUSPEND, actor="token:x", reason="lost phone", now=NOW
        )
        assert (sim.state, sim.identity_id) == (SimState.SUSPENDED, person)
        evs, _ = events.query(conn, org, events.EventQuery(subject=f"sim:{iccid}"))
    assert [e.kind for e in evs] == ["sim.suspend", "sim.activate", "sim.assign"]
    assert (evs[0].actor, evs[0].reason, evs[0].payload) == (
        "token:x",
        "lost phone",
        {"from": "active", "to": "suspended"},
    )


def test_illegal_transition_changes_nothing(engine: Engine, sealer: Sealer) -> None:
    org = _org(engine)
    spec = make_sims(1)[0]
    _import(engine, sealer, org, stock_csv([spec]))
    with engine.connect() as conn:
        before = conn.execute(select(schema.sims)).one()
        count = conn.execute(select(func.count()).select_from(schema.events)).scalar_one()
    with pytest.raises(IllegalTransition), engine.begin() as conn:
        service.change_state(
            conn, org, spec.iccid, SimAction.SUSPEND, actor="t", reason="x", now=NOW
        )
    with engine.connect() as conn:
        assert conn.execute(select(schema.sims)).one() == before
        assert conn.execute(select(func.count()).select_from(schema.events)).scalar_one() == count


def test_assign_needs_an_enabled_identity_of_the_same_org(engine: Engine, sealer: Sealer) -> None:
    org, other = _org(engine), _org(engine, "other")
    spec = make_sims(1)[0]
    _import(engine, sealer, org, stock_csv([spec]))
    with engine.begin() as conn:
        stranger = identities.create_identity(
            conn, other, kind=IdentityKind.USER, name="X", email=None, external_id=None, now=NOW
        )
        off = identities.create_identity(
            conn, org, kind=IdentityKind.USER, name="Off", email=None, external_id=None, now=NOW
        )
        identities.update_identity(conn, org, off.id, name=None, enabled=False)
    with pytest.raises(NotFound), engine.begin() as conn:
        service.change_state(
            conn,
            org,
            spec.iccid,
            SimAction.ASSIGN,
            actor="t",
            reason="",
            now=NOW,
            identity_id=stranger.id,
        )
    with pytest.raises(Conflict, match="disabled"), engine.begin() as conn:
        service.change_state(
            conn,
            org,
            spec.iccid,
            SimAction.ASSIGN,
            actor="t",
            reason="",
            now=NOW,
            identity_id=off.id,
        )
    with pytest.raises(NotFound), engine.begin() as conn:
        service.change_state(
            conn, other, spec.iccid, SimAction.RETIRE, actor="t", reason="x", now=NOW
        )


def test_device_binding_needs_a_reason_and_the_holders_device(
    engine: Engine, sealer: Sealer
) -> None:
    org = _org(engine)
    iccid, person = _active_sim(engine, sealer, org)
    with engine.begin() as conn:
        mine = service.register_device(
            conn,
            org,
            imei="4901542032375181",
            eid=None,
            owner_id=person,
            name="phone",
            actor="t",
            now=NOW,
        )
        someone = identities.create_identity(
            conn, org, kind=IdentityKind.USER, name="B", email=None, external_id=None, now=NOW
        )
        theirs = service.register_device(
            conn,
            org,
            imei="352099001761481",
            eid=None,
            owner_id=someone.id,
            name="",
            actor="t",
            now=NOW,
        )
    assert mine.imei == "490154203237518"  # stored as the IMEI of the IMEISV given
    with pytest.raises(InvalidInput, match="reason"), engine.begin() as conn:
        service.set_binding(conn, org, iccid, mine.id, actor="t", reason=" ", now=NOW)
    with pytest.raises(Conflict, match="another identity"), engine.begin() as conn:
        service.set_binding(conn, org, iccid, theirs.id, actor="t", reason="new phone", now=NOW)
    with engine.begin() as conn:
        sim = service.set_binding(
            conn, org, iccid, mine.id, actor="admin", reason="issued phone", now=NOW
        )
        evs, _ = events.query(conn, org, events.EventQuery(kind="sim.binding_changed"))
    assert (sim.device_id, sim.bound_at) == (mine.id, NOW)
    assert evs[0].payload == {"from_device": None, "to_device": mine.id}


def test_trust_on_first_attach(engine: Engine, sealer: Sealer) -> None:
    org = _org(engine)
    iccid, person = _active_sim(engine, sealer, org)
    with engine.begin() as conn:
        assert service.bind_on_first_attach(conn, org, iccid, "490154203237518", now=NOW) is None
        identities.update_org(conn, org, tofu_binding=True)
        device = service.bind_on_first_attach(conn, org, iccid, "490154203237518", now=NOW)
        assert device is not None
        assert device.owner_id == person
        assert repo.get_sim(conn, org, iccid).device_id == device.id
        # Bound now: a second device does not take over.
        assert service.bind_on_first_attach(conn, org, iccid, "352099001761481", now=NOW) is None
        assert repo.get_sim(conn, org, iccid).device_id == device.id


def test_device_identifiers_are_checked(engine: Engine) -> None:
    org = _org(engine)
    with pytest.raises(InvalidInput, match="check digit"), engine.begin() as conn:
        service.register_device(
            conn, org, imei="490154203237519", eid=None, owner_id=None, name="", actor="t", now=NOW
        )
    with pytest.raises(InvalidInput, match="EID"), engine.begin() as conn:
        service.register_device(
            conn,
            org,
            imei="490154203237518",
            eid="8" * 32,
            owner_id=None,
            name="",
            actor="t",
            now=NOW,
        )
    with engine.begin() as conn:
        service.register_device(
            conn, org, imei="490154203237518", eid=None, owner_id=None, name="", actor="t", now=NOW
        )
    with pytest.raises(Conflict), engine.begin() as conn:
        service.register_device(
            conn, org, imei="490154203237518", eid=None, owner_id=None, name="", actor="t", now=NOW
        )


def test_list_filters_and_cursor_pagination(engine: Engine, sealer: Sealer) -> None:
    org = _org(engine)
    specs = make_sims(25)
    _import(engine, sealer, org, stock_csv(specs))
    seen: list[str] = []
    cursor = None
    with engine.connect() as conn:
        while True:
            page, cursor = repo.list_sims(conn, org, repo.SimFilter(), limit=10, cursor=cursor)
            seen += [s.iccid for s in page]
            if cursor is None:
                break
        assert seen == sorted(s.iccid for s in specs)
        assert repo.list_sims(conn, org, repo.SimFilter(state=SimState.ACTIVE))[0] == []
        one, _ = repo.list_sims(conn, org, repo.SimFilter(imsi=specs[3].imsi))
        assert [s.iccid for s in one] == [specs[3].iccid]
