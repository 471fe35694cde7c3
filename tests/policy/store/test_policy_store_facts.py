"""The facts policies read, as the database holds them: checks, posture, SIM signals, and an
org's subjects (one per SIM that is not retired, one per identity without one), never
another org's (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, insert, update

from ztsim.db import schema
from ztsim.errors import NotFound
from ztsim.identity import repository as identities
from ztsim.identity.models import IdentityKind as StoredKind
from ztsim.inventory import service as inventory
from ztsim.policy.facts import IdentityKind, Posture, SimKind
from ztsim.policy.store import facts
from ztsim.sealing import Sealer

from support.factories import activate, make_sims
from tests_clock import NOW

BOUND_IMEI = "490154203237518"
OTHER_IMEI = "352099001761481"


def _world(engine: Engine, sealer: Sealer) -> dict[str, str]:
    spec_a, spec_b = make_sims(2, seed=7)
    with engine.begin() as conn:
        org = identities.create_org(conn, "A", "a", NOW).id
        other = identities.create_org(conn, "B", "b", NOW).id
        person = activate(conn, sealer, org, spec_a, NOW)
        stranger = activate(conn, sealer, other, spec_b, NOW)
        group = identities.create_collection(conn, org, "finance", NOW, fleet=False).id
        identities.add_member(conn, org, group, person, fleet=False)
        lonely = identities.create_identity(
            conn, org, kind=StoredKind.SERVICE, name="meter", email=None, external_id=None, now=NOW
        ).id
        device = inventory.register_device(
            conn, org, imei=BOUND_IMEI, eid=None, owner_id=person, name="", actor="t", now=NOW
        ).id
        conn.execute(
            update(schema.sims)
            .where(schema.sims.c.iccid == spec_a.iccid)
            .values(
                device_id=device,
                swapped_at=NOW - timedelta(hours=1),
                swap_recent_until=NOW + timedelta(hours=47),
            )
        )
        conn.execute(
            insert(schema.posture_checks).values(
                id="c1",
                org_id=org,
                name="managed",
                expression="device.managed",
                max_age_s=3600,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        conn.execute(
            insert(schema.device_posture).values(
                device_id=device,
                org_id=org,
                source="generic",
                attributes={"managed": True},
                observed_at=NOW,
                expires_at=None,
                received_at=NOW,
            )
        )
        conn.execute(
            insert(schema.radius_sessions).values(
                org_id=org,
                gateway_id="g",
                acct_session_id="s1",
                nas_address="127.0.0.1",
                imsi=spec_a.imsi,
                iccid=spec_a.iccid,
                identity_id=person,
                device_id=device,
                imei=OTHER_IMEI[:14] + "01",
                ue_address="10.0.0.1",
                started_at=NOW,
                updated_at=NOW,
            )
        )
    return {
        "org": org,
        "other": other,
        "person": person,
        "stranger": stranger,
        "group": group,
        "lonely": lonely,
        "device": device,
        "iccid": spec_a.iccid,
        "other_iccid": spec_b.iccid,
    }


def test_an_orgs_subjects_carry_every_fact(engine: Engine, sealer: Sealer) -> None:
    w = _world(engine, sealer)
    with engine.connect() as conn:
        found = {c.identity_id: c for c in facts.subjects(conn, w["org"])}
        checks = facts.read_checks(conn)
    assert set(found) == {w["person"], w["lonely"]}
    sim = found[w["person"]]
    assert (sim.iccid, sim.device_id) == (w["iccid"], w["device"])
    s = sim.subject
    assert s.group_ids == {w["group"]}
    assert s.identity_kind is IdentityKind.USER
    assert s.sim_kind is SimKind.PHYSICAL
    assert s.posture is not None
    assert s.posture.attributes == {"managed": True}
    # The live session reports another device's IMEI than the SIM's bound one.
    assert s.signals.imei_mismatch
    assert s.signals.swapped_at == NOW - timedelta(hours=1)
    assert s.signals.swap_recent_until == NOW + timedelta(hours=47)  # kept beside the mismatch
    assert not s.signals.clone_suspected
    lonely = found[w["lonely"]]
    assert lonely.iccid is None
    assert lonely.subject.identity_kind is IdentityKind.SERVICE
    assert set(checks) == {w["org"]}
    assert checks[w["org"]]["managed"].expression == "device.managed"


def test_one_identity_or_sim_and_never_another_orgs(engine: Engine, sealer: Sealer) -> None:
    w = _world(engine, sealer)
    with engine.connect() as conn:
        mine = facts.subjects(conn, w["org"], identity_id=w["person"])
        by_sim = facts.subjects(conn, w["org"], iccid=w["iccid"])
        with pytest.raises(NotFound):
            facts.subjects(conn, w["org"], identity_id=w["stranger"])
        with pytest.raises(NotFound):
            facts.subjects(conn, w["org"], iccid=w["other_iccid"])
    assert [c.iccid for c in mine] == [w["iccid"]] == [c.iccid for c in by_sim]


def test_signals_follow_the_sim_rows(engine: Engine, sealer: Sealer) -> None:
    w = _world(engine, sealer)
    with engine.begin() as conn:
        conn.execute(
            update(schema.sims)
            .where(schema.sims.c.iccid == w["iccid"])
            .values(clone_suspected_at=NOW, swapped_at=None)
        )
        conn.execute(update(schema.devices).values(imei=OTHER_IMEI))
    with engine.connect() as conn:
        signals = facts.signals_of_sims(conn, [w["iccid"]])[w["iccid"]]
        assert facts.posture_of_devices(conn, ["nothing"]) == {}
        assert facts.identity_kinds(conn, [w["lonely"]]) == {w["lonely"]: IdentityKind.SERVICE}
    assert signals.clone_suspected
    assert signals.swapped_at is None
    assert not signals.imei_mismatch  # the session's IMEISV starts with the bound IMEI now


def test_a_cooling_off_alone_is_a_signal(engine: Engine, sealer: Sealer) -> None:
    w = _world(engine, sealer)
    ends = NOW + timedelta(days=2)
    with engine.begin() as conn:
        conn.execute(
            update(schema.sims)
            .where(schema.sims.c.iccid == w["iccid"])
            .values(swapped_at=None, swap_recent_until=ends)
        )
    with engine.connect() as conn:
        signals = facts.signals_of_sims(conn, None, org_ids=[w["org"]])
    assert signals[w["iccid"]].swap_recent_until == ends  # aware: a naive time is never equal
    assert signals[w["iccid"]].swapped_at is None


def test_whole_reads_take_the_orgs_asked_for_only(engine: Engine, sealer: Sealer) -> None:
    w = _world(engine, sealer)
    with engine.begin() as conn:
        device = inventory.register_device(
            conn, w["other"], imei=OTHER_IMEI, eid=None, owner_id=None, name="", actor="t", now=NOW
        ).id
        conn.execute(
            insert(schema.device_posture).values(
                device_id=device,
                org_id=w["other"],
                source="generic",
                attributes={"managed": False},
                observed_at=NOW,
                expires_at=None,
                received_at=NOW,
            )
        )
    with engine.connect() as conn:
        assert set(facts.posture_of_devices(conn, None)) == {w["device"], device}
        assert set(facts.posture_of_devices(conn, None, org_ids=[w["org"]])) == {w["device"]}
        assert facts.posture_of_devices(conn, [device], org_ids=[w["org"]]) == {}
        assert set(facts.posture_of_devices(conn, [device], org_ids=[w["other"]])) == {device}
        assert set(facts.signals_of_sims(conn, None)) == {w["iccid"], w["other_iccid"]}
        mine = facts.signals_of_sims(conn, None, org_ids=[w["org"]])
        assert set(mine) == {w["iccid"]}
        assert mine[w["iccid"]].imei_mismatch  # the live session's check, filtered alike
        assert facts.signals_of_sims(conn, [w["other_iccid"]], org_ids=[w["org"]]) == {}
        assert facts.signals_of_sims(conn, None, org_ids=[]) == {}


def test_a_stored_report_reads_back_as_the_checked_value(engine: Engine, sealer: Sealer) -> None:
    """Read without checking again (`Posture.stored`), a report is equal to, and hashes
    like, the checked report it was written from."""
    w = _world(engine, sealer)
    written = Posture(
        {"managed": True, "os_version": "17.2", "score": 7, "ratio": 0.5},
        NOW - timedelta(hours=1),
        NOW + timedelta(hours=2),
        "intune",
    )
    with engine.begin() as conn:
        conn.execute(
            update(schema.device_posture)
            .where(schema.device_posture.c.device_id == w["device"])
            .values(
                attributes=dict(written.attributes),
                observed_at=written.observed_at,
                expires_at=written.expires_at,
                source=written.source,
            )
        )
    with engine.connect() as conn:
        read = facts.posture_of_devices(conn, [w["device"]])[w["device"]]
    assert read == written
    assert hash(read) == hash(written)
    assert read.attributes == written.attributes
    assert type(read.attributes["score"]) is int
    assert type(read.attributes["ratio"]) is float
    assert read.observed_at.utcoffset() == timedelta(0)
    with pytest.raises(AttributeError):
        read.source = "other"  # type: ignore[misc]


def test_a_row_no_report_wrote_says_nothing(engine: Engine, sealer: Sealer) -> None:
    _world(engine, sealer)
    with engine.begin() as conn:
        conn.execute(update(schema.device_posture).values(attributes=["not", "a", "report"]))
    with engine.connect() as conn:
        assert facts.posture_of_devices(conn, None) == {}
