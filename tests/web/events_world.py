"""Events for the explorer's tests: written through the event store into two orgs, at
known times, kinds, subjects and outcomes; and an app with the console's new pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from web.signin import sign_in
from ztsim.api.app import create_app
from ztsim.db import schema
from ztsim.events import store
from ztsim.events.schema import NewEvent, Outcome
from ztsim.identity.roles import Role

from support.api import ApiHarness
from support.world import World

# Starts with '=': a spreadsheet would run it as a formula.
FORMULA = "=cmd|' /C calc'!A0"


@dataclass(frozen=True)
class Written:
    """When the test's events were written: `old` two days before `now`."""

    now: datetime
    old: datetime


def console_app(api: ApiHarness) -> FastAPI:
    """The API's app, with the console's pages."""
    return create_app(api.ctx)


def signed_in_client(api: ApiHarness, world: World, role: Role) -> TestClient:
    client = TestClient(console_app(api), raise_server_exceptions=False)
    assert sign_in(client, world.org.tokens[role]) == 303
    return client


def write(api: ApiHarness, alpha: World, bravo: World) -> Written:
    """Alpha: access events about its user's SIM, DNS blocks about its user, an audit event
    with a formula in its reason two days ago; bravo: the same kinds about its own."""
    a, b, now = alpha.org.id, bravo.org.id, api.clock()
    old = now - timedelta(days=2)
    sim_a, person_a = f"sim:{alpha.ids['iccid']}", f"identity:{alpha.ids['identity_id']}"
    with api.engine.begin() as conn:
        store.append(
            conn, [NewEvent(a, "audit.note", "token:t", "org:a", Outcome.SUCCESS, FORMULA)], old
        )
        store.append(
            conn,
            [
                NewEvent(a, "radius.access", "radius", sim_a, Outcome.SUCCESS),
                NewEvent(a, "radius.access", "radius", sim_a, Outcome.DENIED, "SIM suspended"),
                NewEvent(a, "radius.disconnect", "radius", sim_a, Outcome.SUCCESS),
                NewEvent(a, "dns.query", "dns", person_a, Outcome.DENIED, "blocked"),
                NewEvent(a, "dns.query", "dns", "identity:someone-else", Outcome.DENIED),
                NewEvent(b, "radius.access", "radius", f"sim:{bravo.ids['iccid']}"),
                NewEvent(b, "dns.query", "dns", f"identity:{bravo.ids['identity_id']}"),
            ],
            now,
        )
    return Written(now, old)


def ids_of(api: ApiHarness, org_id: str) -> list[int]:
    """Every event id of the org, newest first, read straight from the table."""
    e = schema.events
    with api.engine.connect() as conn:
        rows = conn.execute(select(e.c.id).where(e.c.org_id == org_id).order_by(e.c.id.desc()))
        return [int(i) for i in rows.scalars()]
