"""The overview's figures, counted from the events and sessions of the viewer's org in
the last hour, its charts, risk events and gateways, and only what its role may read."""

from __future__ import annotations

from datetime import timedelta

from ztsim.events import store
from ztsim.events.schema import NewEvent, Outcome
from ztsim.identity import token_store
from ztsim.identity.roles import Principal, Role
from ztsim.sessions import repository as sessions
from ztsim.sessions.table import Session
from ztsim.web import overview
from ztsim.web.viewer import Viewer

from support.api import ApiHarness
from support.world import World


def _principal(api: ApiHarness, token: str) -> Principal:
    with api.engine.connect() as conn:
        found = token_store.authenticate(conn, token, api.clock())
    assert found is not None
    return found


def _access(org: str, outcome: Outcome, reason: str = "") -> NewEvent:
    return NewEvent(org, overview.ACCESS, "radius", "sim:1", outcome, reason)


def _fill(api: ApiHarness, alpha: World, bravo: World) -> None:
    a, b, now = alpha.org.id, bravo.org.id, api.clock()
    with api.engine.begin() as conn:
        store.append(conn, [_access(a, Outcome.FAILURE, "old")], now - timedelta(hours=2))
        store.append(
            conn,
            [
                _access(a, Outcome.SUCCESS),
                _access(a, Outcome.SUCCESS),
                _access(a, Outcome.DENIED, "SIM suspended"),
                _access(b, Outcome.SUCCESS),
                NewEvent(
                    a, overview.DNS_STATS, "dns", "org:a", payload={"queries": 10, "blocked": 3}
                ),
                NewEvent(
                    a, overview.DNS_STATS, "dns", "org:a", payload={"queries": 5, "blocked": 1}
                ),
                NewEvent(
                    b, overview.DNS_STATS, "dns", "org:b", payload={"queries": 99, "blocked": 9}
                ),
            ],
            now - timedelta(minutes=5),
        )
        sessions.save(
            conn,
            [
                Session(
                    a,
                    alpha.ids["gateway_id"],
                    "s1",
                    "192.0.2.1",
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    now,
                    now,
                ),
                Session(
                    a,
                    alpha.ids["gateway_id"],
                    "s2",
                    "192.0.2.1",
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    now,
                    now,
                    stopped_at=now,
                ),
            ],
        )


def _figures(o: overview.Overview) -> dict[str, str]:
    return {f.label: f.shown for f in o.figures}


def test_an_admin_sees_the_last_hour_of_its_own_org(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    _fill(api, alpha, bravo)
    viewer = Viewer(_principal(api, alpha.org.tokens[Role.ADMIN]), "csrf")
    with api.engine.connect() as conn:
        o = overview.read(conn, viewer, api.clock)
    assert _figures(o) == {
        "Devices attached now": "1",
        "Attaches accepted": "2",
        "Attaches refused": "1",
        "DNS queries": "15",
        "DNS queries blocked": "4",
    }
    assert [(f.label, f.value) for f in o.refusals] == [("SIM suspended", 1)]
    assert o.hidden == []
    attaches, dns = o.series.charts
    assert [sum(line.values) for line in attaches.lines] == [2, 2]  # the old refusal too
    assert [sum(line.values) for line in dns.lines] == [15, 4]
    assert o.risks is not None
    assert [r.what for r in o.risks] == ["SIM swap requested"]  # two_orgs asked for one
    assert o.gateways is not None
    assert [(h.gateway.id, h.live) for h in o.gateways] == [(alpha.ids["gateway_id"], 1)]


def test_an_operator_sees_sessions_but_not_the_event_log(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    _fill(api, alpha, bravo)
    viewer = Viewer(_principal(api, alpha.org.tokens[Role.OPERATOR]), "csrf")
    with api.engine.connect() as conn:
        o = overview.read(conn, viewer, api.clock)
    assert _figures(o) == {"Devices attached now": "1"}
    assert len(o.hidden) == 1
    assert o.series.hidden
    assert o.series.charts == []
    assert o.risks is None
    assert o.gateways is not None  # gateways:read and sessions:read


def test_an_analyst_reads_the_event_log_but_not_the_gateways(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    _fill(api, alpha, bravo)
    with api.engine.begin() as conn:
        store.append(
            conn,
            [NewEvent(alpha.org.id, "risk.clone", "gateway:g", "sim:9", Outcome.DENIED, "clone")],
            api.clock(),
        )
    viewer = Viewer(_principal(api, alpha.org.tokens[Role.ANALYST]), "csrf")
    with api.engine.connect() as conn:
        o = overview.read(conn, viewer, api.clock)
    assert o.gateways is None
    assert o.risks is not None
    assert [r.what for r in o.risks] == ["Cloned SIM refused", "SIM swap requested"]
    assert len(o.series.charts) == 2
    assert o.hidden == ["gateways and their sessions"]


def test_a_capped_figure_says_at_least() -> None:
    assert overview.Figure("x", 50_000, capped=True).shown == "at least 50,000"
    assert overview.Figure("x", 1234).shown == "1,234"


def test_the_hour_is_counted_past_the_old_cap(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    """Counted in SQL: more events than the page walk read are all counted."""
    alpha, _ = two_orgs
    many = overview.CAP + 5
    with api.engine.begin() as conn:
        store.append(conn, [_access(alpha.org.id, Outcome.SUCCESS)] * many, api.clock())
    viewer = Viewer(_principal(api, alpha.org.tokens[Role.ADMIN]), "csrf")
    with api.engine.connect() as conn:
        o = overview.read(conn, viewer, api.clock)
    assert _figures(o)["Attaches accepted"] == f"{many:,}"
