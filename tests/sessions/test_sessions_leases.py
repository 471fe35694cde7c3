"""Leases and blocks on both backends: stable per SIM, never one address for two SIMs,
even with two AAA processes allocating at once."""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network

import pytest
from sqlalchemy import Engine, select

from ztsim.db import schema
from ztsim.errors import Conflict, InvalidInput
from ztsim.identity import repository as identities
from ztsim.radius.store import registry
from ztsim.sessions.allocator import Ipam, PoolEntry
from ztsim.sessions.leases import (
    assign_static,
    claim_block,
    claim_next_block,
    load_leases,
    record_lease,
    record_leases,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _pool(
    engine: Engine, cidr: str = "10.64.0.0/22", static: str | None = "10.65.0.0/29"
) -> PoolEntry:
    with engine.begin() as conn:
        org = identities.create_org(conn, "Org", "org", NOW)
        pool = registry.create_pool(conn, org.id, cidr=cidr, static_cidr=static, now=NOW)
    return PoolEntry(
        pool.id,
        org.id,
        IPv4Network(pool.cidr),
        IPv4Network(pool.static_cidr) if pool.static_cidr else None,
    )


def _allocate(engine: Engine, ipam: Ipam, pool: PoolEntry, imsi: str) -> str:
    got = ipam.allocate(pool, imsi)
    if got is None:
        with engine.begin() as conn:
            assert claim_block(conn, ipam, pool, NOW) > 0
        got = ipam.allocate(pool, imsi)
    assert got is not None
    address, new = got
    if new:
        with engine.begin() as conn:
            assert record_lease(conn, pool, imsi, address, NOW)
    return address


def _leases(engine: Engine) -> dict[str, str]:
    t = schema.ip_leases
    with engine.connect() as conn:
        return {imsi: address for imsi, address in conn.execute(select(t.c.imsi, t.c.address))}


def test_two_processes_never_hand_out_the_same_address(engine: Engine) -> None:
    pool = _pool(engine)
    first, second = Ipam("proc-a", block_prefix=24), Ipam("proc-b", block_prefix=24)
    handed: dict[str, str] = {}
    for n in range(600):
        ipam = first if n % 2 else second
        imsi = f"00101{n:010d}"
        handed[imsi] = _allocate(engine, ipam, pool, imsi)
    assert len(set(handed.values())) == 600
    for address in handed.values():
        assert IPv4Address(address) in pool.network
        assert address not in ("10.64.0.0", "10.64.3.255")
    # Stable: asking again gives the same address, also to a process started later.
    third = Ipam("proc-c")
    with engine.begin() as conn:
        assert load_leases(conn, third, [pool.id]) == 600
    assert all(third.allocate(pool, imsi) == (a, False) for imsi, a in handed.items())
    with engine.connect() as conn:
        blocks = conn.execute(select(schema.ip_blocks.c.start, schema.ip_blocks.c.owner)).all()
    assert len({b[0] for b in blocks}) == len(blocks)
    assert {b[1] for b in blocks} == {"proc-a", "proc-b"}


def test_blocks_are_claimed_in_order_each_once_then_the_pool_is_exhausted(
    engine: Engine,
) -> None:
    pool = _pool(engine, cidr="10.64.0.0/23", static=None)
    with engine.begin() as conn:
        first = claim_next_block(conn, pool, "proc-a", NOW, prefix=24)
        second = claim_next_block(conn, pool, "proc-b", NOW, prefix=24)
        assert claim_next_block(conn, pool, "proc-a", NOW, prefix=24) is None
    assert (first, second) == (IPv4Network("10.64.0.0/24"), IPv4Network("10.64.1.0/24"))


def test_pool_exhaustion_is_reported_not_overcommitted(engine: Engine) -> None:
    pool = _pool(engine, cidr="10.64.0.0/29", static=None)
    ipam = Ipam("p")
    given = {_allocate(engine, ipam, pool, f"00101{n:010d}") for n in range(6)}
    assert len(given) == 6
    assert ipam.allocate(pool, "001019999999999") is None
    with engine.begin() as conn:
        assert claim_block(conn, ipam, pool, NOW) == 0


def test_database_refuses_a_second_lease_for_an_address_or_a_sim(engine: Engine) -> None:
    pool = _pool(engine)
    with engine.begin() as conn:
        assert record_lease(conn, pool, "001010000000001", "10.64.0.1", NOW)
        assert not record_lease(conn, pool, "001010000000002", "10.64.0.1", NOW)
        assert not record_lease(conn, pool, "001010000000001", "10.64.0.2", NOW)


def test_many_leases_land_in_bulk_and_a_collision_spares_the_others(engine: Engine) -> None:
    pool = _pool(engine)
    # More than one statement's worth (see ztsim.db.bulk).
    burst = [(pool, f"00101{n:010d}", f"10.64.{n // 250}.{n % 250 + 1}", NOW) for n in range(400)]
    with engine.begin() as conn:
        assert record_leases(conn, burst) == 400
    assert _leases(engine) == {imsi: address for _, imsi, address, _ in burst}
    taken = (pool, "001019999999999", "10.64.0.1", NOW)  # another SIM's address
    fresh = (pool, "001019999999998", "10.64.3.1", NOW)
    with engine.begin() as conn:
        assert record_leases(conn, [taken, fresh]) == 1
    leases = _leases(engine)
    assert leases["001019999999998"] == "10.64.3.1"
    assert "001019999999999" not in leases
    with engine.connect() as conn:
        created = conn.execute(select(schema.ip_leases.c.created_at).limit(1)).scalar_one()
    assert created == NOW


def test_static_addresses(engine: Engine) -> None:
    pool = _pool(engine)
    with engine.begin() as conn:
        assert record_lease(conn, pool, "001010000000001", "10.64.0.1", NOW)
        assign_static(conn, pool, "001010000000001", "10.65.0.3", NOW)
        with pytest.raises(Conflict):
            assign_static(conn, pool, "001010000000002", "10.65.0.3", NOW)
        for bad in ("10.64.0.9", "nonsense"):
            with pytest.raises(InvalidInput):
                assign_static(conn, pool, "001010000000002", bad, NOW)
    ipam = Ipam("p")
    with engine.begin() as conn:
        load_leases(conn, ipam, [pool.id])
    assert ipam.allocate(pool, "001010000000001") == ("10.65.0.3", False)


def test_a_pool_without_a_static_range_refuses_a_static_address(engine: Engine) -> None:
    pool = _pool(engine, static=None)
    with engine.begin() as conn, pytest.raises(InvalidInput, match="no static range"):
        assign_static(conn, pool, "001010000000001", "10.65.0.3", NOW)


@pytest.mark.parametrize(
    ("cidr", "static"),
    [
        ("10.0.0.1/24", None),
        ("10.0.0.0/31", None),
        ("fd00::/64", None),
        ("10.0.0.0/24", "10.0.0.0/28"),
    ],
)
def test_bad_pools_are_refused(engine: Engine, cidr: str, static: str | None) -> None:
    with engine.begin() as conn:
        org = identities.create_org(conn, "Org", "org", NOW)
        with pytest.raises(InvalidInput):
            registry.create_pool(conn, org.id, cidr=cidr, static_cidr=static, now=NOW)
