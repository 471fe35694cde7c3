"""The gateways page's reads: the org's gateways with their live sessions and when each
was last heard from, its pool with the addresses in use; nothing of another org."""

from __future__ import annotations

from datetime import datetime, timedelta
from ipaddress import IPv4Network

from ztsim.identity import token_store
from ztsim.identity.roles import Role
from ztsim.sessions import leases
from ztsim.sessions import repository as sessions
from ztsim.sessions.allocator import PoolEntry
from ztsim.sessions.table import Session
from ztsim.web import gateways
from ztsim.web.viewer import Viewer

from support.api import ApiHarness
from support.world import World


def _viewer(api: ApiHarness, token: str) -> Viewer:
    with api.engine.connect() as conn:
        principal = token_store.authenticate(conn, token, api.clock())
    assert principal is not None
    return Viewer(principal, "csrf")


def _session(world: World, acct: str, now: datetime, stopped: bool = False) -> Session:
    return Session(
        world.org.id,
        world.ids["gateway_id"],
        acct,
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
        stopped_at=now if stopped else None,
    )


def test_gateways_show_live_sessions_and_the_newest_update(
    api: ApiHarness, two_orgs: tuple[World, World]
) -> None:
    alpha, bravo = two_orgs
    now = api.clock().replace(microsecond=0)
    with api.engine.begin() as conn:
        sessions.save(
            conn,
            [
                _session(alpha, "a1", now - timedelta(minutes=10)),
                _session(alpha, "a2", now - timedelta(minutes=5)),
                _session(alpha, "a3", now - timedelta(minutes=1), stopped=True),
                _session(bravo, "b1", now),
                _session(bravo, "b2", now),
            ],
        )
    with api.engine.connect() as conn:
        view = gateways.read(conn, _viewer(api, alpha.org.tokens[Role.OPERATOR]), api.clock())
    [row] = view.gateways
    assert row.gateway.id == alpha.ids["gateway_id"]
    assert row.gateway.address == "192.0.2.1/32"
    assert (row.live_sessions, row.last_seen) == (2, now - timedelta(minutes=1))
    assert view.sessions_shown


def test_a_gateway_never_heard_from(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, _ = two_orgs
    with api.engine.connect() as conn:
        view = gateways.read(conn, _viewer(api, alpha.org.tokens[Role.ADMIN]), api.clock())
    assert [(r.live_sessions, r.last_seen) for r in view.gateways] == [(0, None)]
    assert view.pools == []


def test_a_pool_with_its_size_and_leases(api: ApiHarness, two_orgs: tuple[World, World]) -> None:
    alpha, bravo = two_orgs
    for world, cidr, static in (
        (alpha, "10.20.0.0/24", "10.21.0.0/28"),
        (bravo, "10.30.0.0/24", None),
    ):
        r = api.client.post(
            "/api/v1/ip-pools",
            json={"cidr": cidr, "static_cidr": static},
            headers=world.org.auth(),
        )
        assert r.status_code == 201, r.text
        entry = PoolEntry(r.json()["id"], world.org.id, IPv4Network(cidr), None)
        with api.engine.begin() as conn:
            for n in range(3 if world is alpha else 7):
                assert leases.record_lease(
                    conn, entry, f"00101000000000{n}", f"{cidr[:-4]}{n + 1}", api.clock()
                )
    with api.engine.connect() as conn:
        view = gateways.read(conn, _viewer(api, alpha.org.tokens[Role.AUDITOR]), api.clock())
    [pool] = view.pools
    assert (pool.pool.cidr, pool.size, pool.static_size, pool.in_use) == (
        "10.20.0.0/24",
        256,
        16,
        3,
    )


def test_addresses_in_a_prefix() -> None:
    assert gateways.addresses_in(None) == 0
    assert gateways.addresses_in("10.0.0.0/30") == 4
    assert gateways.addresses_in("192.0.2.7") == 1
