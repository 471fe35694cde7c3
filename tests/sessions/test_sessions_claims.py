"""Claims on the shared address space, on both backends: every kind (gateway, IP pool, DNS
network) against every kind across orgs is refused, an org's own claims may overlap, and
two orgs claiming at the same moment do not both win."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import ip_network

import pytest
from sqlalchemy import Connection, Engine, func, select

from ztsim.db import schema
from ztsim.db.engine import for_writing
from ztsim.dns.policy.rules import OrgSettings
from ztsim.dns.store import repository as dns_repo
from ztsim.errors import Conflict
from ztsim.identity import repository as identities
from ztsim.radius.store import registry
from ztsim.sealing import Sealer
from ztsim.sessions import claims

NOW = datetime(2026, 1, 1, tzinfo=UTC)
Claim = Callable[[Connection, str], None]


def _gateway(address: str) -> Callable[[Sealer], Claim]:
    def make(sealer: Sealer) -> Claim:
        def claim(conn: Connection, org_id: str) -> None:
            registry.create_gateway(
                conn,
                sealer,
                org_id,
                name=f"gw-{address}",
                address=address,
                secret="claims-test-secret-0123456789",
                apns=["corp"],
                require_message_authenticator=True,
                coa_port=3799,
                now=NOW,
            )

        return claim

    return make


def _pool(cidr: str, static: str | None = None) -> Callable[[Sealer], Claim]:
    def make(_sealer: Sealer) -> Claim:
        def claim(conn: Connection, org_id: str) -> None:
            registry.create_pool(conn, org_id, cidr=cidr, static_cidr=static, now=NOW)

        return claim

    return make


def _networks(*cidrs: str) -> Callable[[Sealer], Claim]:
    def make(_sealer: Sealer) -> Claim:
        def claim(conn: Connection, org_id: str) -> None:
            dns_repo.put_settings(conn, org_id, OrgSettings(), cidrs, NOW)

        return claim

    return make


# What org A holds, by kind: all inside 10.50.0.0/16 (and A's gateway prefix is that /16).
HELD = {
    "gateway": _gateway("10.50.0.0/16"),
    "pool": _pool("10.50.0.0/16"),
    "pool_static": _pool("10.60.0.0/16", "10.50.0.0/16"),
    "dns_network": _networks("10.50.0.0/16"),
}
# What org B then asks for: each overlaps A's claim.
WANTED = {
    "gateway": _gateway("10.50.7.1"),
    "gateway_v4_mapped": _gateway("::ffff:10.50.7.1"),
    "pool": _pool("10.50.8.0/24"),
    "pool_static": _pool("10.70.0.0/24", "10.50.9.0/24"),
    "dns_network": _networks("192.0.2.0/24", "10.50.0.0/24"),
    "dns_network_around": _networks("10.0.0.0/8"),
}


def _orgs(engine: Engine) -> tuple[str, str]:
    with engine.begin() as conn:
        a = identities.create_org(conn, "A", "org-a", NOW).id
        b = identities.create_org(conn, "B", "org-b", NOW).id
    return a, b


def _counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(schema.radius_gateways)).scalar_one(),
            conn.execute(select(func.count()).select_from(schema.ip_pools)).scalar_one(),
            conn.execute(select(func.count()).select_from(schema.dns_settings)).scalar_one(),
        )


@pytest.mark.parametrize("held", sorted(HELD))
@pytest.mark.parametrize("wanted", sorted(WANTED))
def test_every_kind_against_every_kind_across_orgs_is_refused(
    engine: Engine, sealer: Sealer, held: str, wanted: str
) -> None:
    a, b = _orgs(engine)
    with for_writing(engine).begin() as conn:
        HELD[held](sealer)(conn, a)
    before = _counts(engine)
    with pytest.raises(Conflict) as refused, for_writing(engine).begin() as conn:
        WANTED[wanted](sealer)(conn, b)
    assert str(refused.value) == claims.CLAIMED
    assert a not in str(refused.value)
    assert _counts(engine) == before
    # The same claim by the org that holds the space keeps today's behaviour.
    with for_writing(engine).begin() as conn:
        if held.startswith("pool") and wanted.startswith("pool"):
            return  # one pool per org, as before
        WANTED[wanted](sealer)(conn, a)


def test_claims_apart_from_each_other_are_all_taken(engine: Engine, sealer: Sealer) -> None:
    a, b = _orgs(engine)
    with for_writing(engine).begin() as conn:
        for make in (_gateway("10.50.0.1"), _pool("10.51.0.0/16"), _networks("10.52.0.0/16")):
            make(sealer)(conn, a)
        for make in (_gateway("10.50.0.2"), _pool("10.53.0.0/16"), _networks("10.54.0.0/16")):
            make(sealer)(conn, b)
        # IPv6 and IPv4 outside the mapped range never meet.
        _gateway("2001:db8::/32")(sealer)(conn, a)
        _networks("10.54.0.0/16", "2001:db9::/32")(sealer)(conn, b)
    assert _counts(engine) == (3, 2, 2)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("10.0.0.0/8", "10.1.0.0/16", True),
        ("10.0.0.0/16", "10.1.0.0/16", False),
        ("::ffff:10.0.0.0/104", "10.1.2.3/32", True),
        ("::ffff:11.0.0.0/104", "10.1.2.3/32", False),
        ("::/0", "10.1.2.3/32", True),
        ("2001:db8::/32", "10.0.0.0/8", False),
        ("2001:db8::/32", "2001:db8:1::/48", True),
    ],
)
def test_overlaps_across_families(a: str, b: str, expected: bool) -> None:
    assert claims.overlaps(ip_network(a), ip_network(b)) is expected
    assert claims.overlaps(ip_network(b), ip_network(a)) is expected


def test_two_orgs_claiming_at_once_do_not_both_win(engine: Engine, sealer: Sealer) -> None:
    """A holds its claim's transaction open; B's claim waits for it (the advisory lock on
    PostgreSQL, the write lock on SQLite), then sees A's claim and is refused."""
    a, b = _orgs(engine)
    outcome: list[object] = []

    def second() -> None:
        try:
            with for_writing(engine).begin() as conn:
                registry.create_pool(conn, b, cidr="10.231.0.0/24", static_cidr=None, now=NOW)
            outcome.append("won")
        except Conflict as exc:
            outcome.append(exc)

    with for_writing(engine).begin() as conn:
        registry.create_pool(conn, a, cidr="10.231.0.0/16", static_cidr=None, now=NOW)
        racer = threading.Thread(target=second)
        racer.start()
        time.sleep(0.5)
        # B is held at the lock while A's transaction is open.
        assert outcome == []
    racer.join(timeout=20)
    assert not racer.is_alive()
    (result,) = outcome
    assert isinstance(result, Conflict), result
    assert _counts(engine)[1] == 1
