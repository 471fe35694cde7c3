"""A SIM's timeline: its org's events about it, newest first, in words, with only the
payload fields known to be plain facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ztsim.events import store
from ztsim.events.schema import Event, NewEvent, Outcome
from ztsim.web import sim_timeline

from support.api import ApiHarness
from support.world import World


def _read(api: ApiHarness, world: World, imsi: str = "-") -> list[sim_timeline.Moment]:
    with api.engine.connect() as conn:
        moments, _ = sim_timeline.read(conn, world.org.id, world.ids["iccid"], imsi)
    return moments


def test_the_timeline_is_the_orgs_events_about_the_sim_newest_first(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    iccid, imsi = alpha.ids["iccid"], alpha.ids["supiOrSuci"].removeprefix("imsi-")
    later = api.clock() + timedelta(seconds=5)
    with api.engine.begin() as conn:
        store.append(
            conn,
            [
                NewEvent(
                    alpha.org.id,
                    "radius.access",
                    "gateway:g",
                    f"sim:{iccid}",
                    Outcome.DENIED,
                    "sim_not_active",
                    {"apn": "corp", "imei": "490154203237518", "k": "not shown"},
                ),
                NewEvent(alpha.org.id, "radius.access", "gateway:g", f"imsi:{imsi}"),
                # Another org's event naming the same subject is not this SIM's.
                NewEvent(bravo.org.id, "sim.suspend", "x", f"sim:{iccid}", reason="theirs"),
                NewEvent(alpha.org.id, "sim.suspend", "x", "sim:other", reason="another SIM"),
            ],
            later,
        )
    moments = _read(api, alpha, imsi)
    whats = [m.what for m in moments]
    # The lifecycle the world made through the API, then the two attaches.
    assert whats[:2] == ["Attach accepted", "Attach refused"]
    assert "Activated" in whats
    assert "Assigned" in whats
    assert whats.index("Activated") < whats.index("Assigned")  # newest first
    refused = moments[1]
    assert (refused.outcome, refused.reason) == ("denied", "sim_not_active")
    assert refused.details == "APN corp, IMEI 490154203237518"
    assert all(m.reason not in ("theirs", "another SIM") for m in moments)
    assert "Attach accepted" not in [m.what for m in _read(api, alpha)]  # no IMSI: sim only


def test_lifecycle_moments_say_from_and_to() -> None:
    event = _event("sim.suspend", {"from": "active", "to": "suspended", "flag": True})
    moment = sim_timeline.moment(event)
    assert (moment.what, moment.details) == ("Suspended", "from active, to suspended")


def test_an_unknown_kind_is_shown_by_its_name() -> None:
    assert sim_timeline.words(_event("esim.order_created", {})) == "esim.order_created"


def _event(kind: str, payload: dict[str, object]) -> Event:
    return Event(1, "o", datetime.now(UTC), kind, "a", "sim:1", Outcome.SUCCESS, "", payload)
