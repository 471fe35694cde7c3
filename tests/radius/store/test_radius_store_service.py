"""Gateway and pool use cases: each leaves its change, its audit event (never the secret)
and a NETWORK outbox row for its org; a refused one leaves none (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine

from ztsim.errors import Conflict, InvalidInput, NotFound
from ztsim.feed.change import Topic
from ztsim.identity import repository as identities
from ztsim.radius.store import registry, service
from ztsim.sealing import Sealer

from support.leaks import LEAKS
from support.traces import refused, run
from tests_clock import NOW

SECRET = "store-service-gateway-secret"
LEAKS.add_secret(SECRET)


def _orgs(engine: Engine) -> tuple[str, str]:
    with engine.begin() as conn:
        return (
            identities.create_org(conn, "Acme", "acme", NOW).id,
            identities.create_org(conn, "Other", "other", NOW).id,
        )


def _gateway(
    sealer: Sealer, org: str, address: str, secret: str = SECRET
) -> Callable[[Connection], Any]:
    return lambda c: service.create_gateway(
        c,
        sealer,
        org,
        name=f"pgw-{address}",
        address=address,
        secret=secret,
        apns=["corp"],
        require_message_authenticator=True,
        coa_port=3799,
        actor="admin",
        now=NOW,
    )


def test_gateways_reach_the_network_planes(engine: Engine, sealer: Sealer) -> None:
    org, other = _orgs(engine)
    gateway, left = run(engine, _gateway(sealer, org, "192.0.2.1"))
    assert left.events == [(org, "gateway.created", f"gateway:{gateway.id}")]
    assert left.topics == [(Topic.NETWORK, org)]
    with engine.connect() as conn:
        assert [g.id for g in registry.list_gateways(conn, org)] == [gateway.id]
    # A short secret, another org's address, or the same address again: nothing.
    refused(engine, InvalidInput, _gateway(sealer, org, "192.0.2.2", secret="short"))
    refused(engine, Conflict, _gateway(sealer, other, "192.0.2.1"))
    refused(engine, Conflict, _gateway(sealer, org, "192.0.2.1"))

    def delete(org_id: str) -> Callable[[Connection], Any]:
        return lambda c: service.delete_gateway(c, org_id, gateway.id, actor="admin", now=NOW)

    refused(engine, NotFound, delete(other))  # another org's gateway
    _none, left = run(engine, delete(org))
    assert left.events == [(org, "gateway.deleted", f"gateway:{gateway.id}")]
    assert left.topics == [(Topic.NETWORK, org)]
    refused(engine, NotFound, delete(org))  # gone already


def test_pools_reach_the_network_planes(engine: Engine) -> None:
    org, other = _orgs(engine)

    def pool(org_id: str, cidr: str) -> Callable[[Connection], Any]:
        return lambda c: service.create_pool(
            c, org_id, cidr=cidr, static_cidr=None, actor="admin", now=NOW
        )

    created, left = run(engine, pool(org, "10.64.0.0/16"))
    assert left.events == [(org, "ip_pool.created", f"ip_pool:{created.id}")]
    assert left.topics == [(Topic.NETWORK, org)]
    refused(engine, InvalidInput, pool(org, "10.64.0.1/16"))  # host bits
    refused(engine, Conflict, pool(other, "10.64.128.0/17"))  # another org's space
    refused(engine, Conflict, pool(org, "10.80.0.0/16"))  # one pool per org
