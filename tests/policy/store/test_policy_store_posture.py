"""Posture reports stored per device: resolved within the reporting org only, newest wins
(MDM resends change nothing and publish nothing), each change audited with attribute names
only and published on Topic.POSTURE; reading and forgetting a report (SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select

from ztsim.db import chunks, schema
from ztsim.errors import NotFound
from ztsim.feed.change import Topic
from ztsim.identity import repository as identities
from ztsim.inventory import service as inventory
from ztsim.policy.facts import Posture
from ztsim.policy.posture import DeviceRef, PostureReport
from ztsim.policy.store import posture as store

from support.traces import refused, run
from tests_clock import NOW

IMEI_A = "490154203237518"
IMEI_B = "352099001761481"  # org b's device
SERIAL_A = "F9FXK1ABCD7Q"
SERIAL_B = "DMPXK2QWERTY"
ACTOR = "token:connector"


@dataclass
class Orgs:
    a: str
    b: str
    phone: str  # org a, by IMEI
    tablet: str  # org a, by serial number (no modem would still have an IMEI here)
    foreign: str  # org b's, with a serial number too


@pytest.fixture
def orgs(engine: Engine) -> Orgs:
    with engine.begin() as conn:
        a = identities.create_org(conn, "A", "a", NOW).id
        b = identities.create_org(conn, "B", "b", NOW).id

        def device(org: str, imei: str, serial: str | None) -> str:
            return inventory.register_device(
                conn,
                org,
                imei=imei,
                eid=None,
                owner_id=None,
                name="",
                actor="t",
                now=NOW,
                serial_number=serial,
            ).id

        phone = device(a, IMEI_A, None)
        tablet = device(a, "356938035643809", SERIAL_A)
        foreign = device(b, IMEI_B, SERIAL_B)
    return Orgs(a, b, phone, tablet, foreign)


def _report(ref: DeviceRef, at: datetime = NOW, **attributes: Any) -> PostureReport:
    attributes = attributes or {"managed": True, "compliant": True, "os_version": "17.4"}
    return PostureReport(ref, Posture(attributes, at, at + timedelta(days=1), "intune"))


def _record(org: str, *reports: PostureReport, now: datetime = NOW) -> Callable[[Connection], Any]:
    return lambda c: store.record(c, org, list(reports), actor=ACTOR, now=now)


def _payloads(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(schema.events.c.payload)
            .where(schema.events.c.kind == "device.posture")
            .order_by(schema.events.c.id)
        ).all()
    return [dict(r.payload) for r in rows]


def test_reports_resolve_by_id_imei_and_serial_within_the_org(engine: Engine, orgs: Orgs) -> None:
    reports = [
        _report(DeviceRef(imei=IMEI_A)),
        _report(DeviceRef(imei=IMEI_B)),  # org b's device: unknown here
        _report(DeviceRef(serial_number=SERIAL_A)),
        _report(DeviceRef(serial_number=SERIAL_B)),  # org b's
        _report(DeviceRef(device_id=orgs.foreign)),  # org b's
        _report(DeviceRef(imei="356938035643817")),  # nobody's
    ]
    result, left = run(engine, _record(orgs.a, *reports))
    assert result == store.Result([orgs.phone, orgs.tablet], [1, 3, 4, 5], [])
    assert left.topics == [(Topic.POSTURE, orgs.phone), (Topic.POSTURE, orgs.tablet)]
    assert {c.org_id for c in left.changes} == {orgs.a}
    assert left.events == [
        (orgs.a, "device.posture", f"device:{orgs.phone}"),
        (orgs.a, "device.posture", f"device:{orgs.tablet}"),
    ]
    assert left.actors == [ACTOR, ACTOR]
    # Names, not values, besides managed and compliant: events stay small.
    assert _payloads(engine)[0] == {
        "source": "intune",
        "attributes": ["compliant", "managed", "os_version"],
        "managed": True,
        "compliant": True,
    }
    by_id, _ = run(
        engine, _record(orgs.a, _report(DeviceRef(device_id=orgs.phone), NOW + timedelta(1)))
    )
    assert by_id.applied == [orgs.phone]
    with engine.connect() as conn, pytest.raises(NotFound):
        store.get(conn, orgs.b, orgs.foreign)  # nothing reached org b's device


def test_the_newest_report_wins_and_resends_publish_nothing(engine: Engine, orgs: Orgs) -> None:
    ref = DeviceRef(imei=IMEI_A)
    later = NOW + timedelta(minutes=30)
    received = NOW + timedelta(hours=1)
    first, _ = run(engine, _record(orgs.a, _report(ref, later, managed=True), now=received))
    assert first.applied == [orgs.phone]

    # The same report again, and an older one: nothing changes, nothing is published.
    for at in (later, NOW):
        again, left = run(engine, _record(orgs.a, _report(ref, at, managed=False)))
        assert (again.applied, again.ignored, left.empty) == ([], [0], True)

    with engine.connect() as conn:
        stored = store.get(conn, orgs.a, orgs.phone)
    assert stored.posture == Posture({"managed": True}, later, later + timedelta(days=1), "intune")
    assert stored.received_at == received

    newer, left = run(engine, _record(orgs.a, _report(ref, later + timedelta(seconds=1), x=1)))
    assert newer.applied == [orgs.phone]
    assert left.topics == [(Topic.POSTURE, orgs.phone)]
    with engine.connect() as conn:
        assert dict(store.get(conn, orgs.a, orgs.phone).posture.attributes) == {"x": 1}


def test_within_a_batch_each_device_keeps_its_newest_report(engine: Engine, orgs: Orgs) -> None:
    ref = DeviceRef(imei=IMEI_A)
    batch = [
        _report(ref, NOW + timedelta(minutes=2), step=2),
        _report(ref, NOW, step=0),
        _report(ref, NOW + timedelta(minutes=2), step=3),  # as new as the first: later wins
        _report(DeviceRef(serial_number=SERIAL_A), NOW, step=9),
    ]
    result, left = run(engine, _record(orgs.a, *batch))
    assert result == store.Result([orgs.phone, orgs.tablet], [], [0, 1])
    assert left.topics == [(Topic.POSTURE, orgs.phone), (Topic.POSTURE, orgs.tablet)]
    with engine.connect() as conn:
        assert store.get(conn, orgs.a, orgs.phone).posture.attributes["step"] == 3


def test_an_empty_batch_or_one_of_strangers_leaves_nothing(engine: Engine, orgs: Orgs) -> None:
    for reports in ([], [_report(DeviceRef(imei=IMEI_B))]):
        result, left = run(engine, _record(orgs.a, *reports))
        assert (result.applied, left.empty) == ([], True)


def test_a_large_batch_resolves_in_chunks(engine: Engine, orgs: Orgs) -> None:
    strangers = [_report(DeviceRef(serial_number=f"S{n:05d}")) for n in range(chunks.CHUNK * 2 + 1)]
    mine = _report(DeviceRef(serial_number=SERIAL_A))
    result, _ = run(engine, _record(orgs.a, *strangers, mine))
    assert result.applied == [orgs.tablet]
    assert len(result.unmatched) == len(strangers)


def test_a_report_is_read_and_forgotten_within_its_org(engine: Engine, orgs: Orgs) -> None:
    run(engine, _record(orgs.a, _report(DeviceRef(imei=IMEI_A))))

    def forget(org: str, device: str) -> Callable[[Connection], Any]:
        return lambda c: store.delete(c, org, device, actor="token:admin", now=NOW)

    refused(engine, NotFound, forget(orgs.b, orgs.phone))  # another org's device
    refused(engine, NotFound, forget(orgs.a, orgs.tablet))  # no report
    _none, left = run(engine, forget(orgs.a, orgs.phone))
    assert left.events == [(orgs.a, "device.posture.deleted", f"device:{orgs.phone}")]
    assert left.topics == [(Topic.POSTURE, orgs.phone)]
    with engine.connect() as conn, pytest.raises(NotFound):
        store.get(conn, orgs.a, orgs.phone)
    # Forgotten, the device takes any report again, even an older one.
    again, _ = run(engine, _record(orgs.a, _report(DeviceRef(imei=IMEI_A), NOW - timedelta(1))))
    assert again.applied == [orgs.phone]
