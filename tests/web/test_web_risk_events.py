"""The overview's recent risk events: the newest across the risk kinds, of the org only,
with a finding's detector and outcome in words."""

from __future__ import annotations

from datetime import timedelta

from ztsim.events import store
from ztsim.events.schema import NewEvent, Outcome
from ztsim.web import risk_events

from support.api import ApiHarness


def test_the_newest_risk_events_of_the_org(api: ApiHarness) -> None:
    a, b = api.new_org("alpha").id, api.new_org("bravo").id
    now = api.clock()
    with api.engine.begin() as conn:
        store.append(
            conn,
            [
                NewEvent(a, "risk.clone", "gateway:g", f"sim:{i}", Outcome.DENIED, "clone")
                for i in range(12)
            ],
            now - timedelta(minutes=10),
        )
        store.append(
            conn,
            [
                NewEvent(a, "radius.access", "gateway:g", "sim:x"),  # not a risk event
                NewEvent(b, "risk.device_swap", "gateway:g", "sim:b", Outcome.DENIED, "swap"),
                NewEvent(
                    a,
                    "risk.finding",
                    "risk:imei_flapping",
                    "sim:f",
                    payload={"detector": "imei_flapping", "outcome": "suspended"},
                ),
            ],
            now,
        )
    with api.engine.connect() as conn:
        found = risk_events.newest(conn, a)
    assert len(found) == risk_events.SHOWN
    assert found[0].event.subject == "sim:f"
    assert found[0].what == "Detector finding"
    assert found[0].detail == "imei_flapping: suspended"
    # Then the clones, newest first, the oldest two left out.
    assert [r.event.subject for r in found[1:]] == [f"sim:{i}" for i in range(11, 2, -1)]
    assert found[1].detail == "clone"
    assert all(r.event.org_id == a for r in found)
