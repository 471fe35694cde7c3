"""Each gateway of the org with its live sessions and the last accounting it sent;
sessions long stopped are not read, another org's gateways never shown."""

from __future__ import annotations

from datetime import datetime, timedelta

from ztsim.sessions import repository as sessions
from ztsim.sessions.table import Session
from ztsim.web import gateway_health

from support.api import ApiHarness
from support.world import World


def _session(
    org: str, gateway: str, key: str, updated: datetime, stopped: datetime | None = None
) -> Session:
    return Session(
        org, gateway, key, "192.0.2.1", None, None, None, None, None, None, None, None, None,
        updated - timedelta(hours=1), updated, stopped_at=stopped,
    )  # fmt: skip


def test_live_sessions_and_last_accounting_per_gateway(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    a, gw = alpha.org.id, alpha.ids["gateway_id"]
    now = api.clock()
    with api.engine.begin() as conn:
        sessions.save(
            conn,
            [
                _session(a, gw, "live1", now - timedelta(minutes=5)),
                _session(a, gw, "live2", now - timedelta(minutes=50)),
                _session(a, gw, "ended", now - timedelta(minutes=2), now - timedelta(minutes=2)),
                _session(a, gw, "old", now - timedelta(days=3), now - timedelta(days=3)),
                _session(bravo.org.id, bravo.ids["gateway_id"], "b", now),
            ],
        )
    with api.engine.connect() as conn:
        [health] = gateway_health.read(conn, a, now)
        [quiet] = gateway_health.read(conn, bravo.org.id, now + timedelta(days=2))
    assert health.gateway.id == gw
    assert health.live == 2
    assert health.last_accounting == now - timedelta(minutes=2)
    # A live session counts however old its last accounting is; that time is shown.
    assert quiet.live == 1
    assert quiet.last_accounting == now
