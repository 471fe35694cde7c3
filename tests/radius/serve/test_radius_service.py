"""The AAA service. Address blocks: a dry pool gets its next block off the hot path, and
the gateway's retransmission its address; a pool with no block left gets Access-Reject.
Accounting is answered once its records are committed, without waiting for the tick.
(Revocation: test_radius_revocation.py; the change feed: test_radius_following.py.)"""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, select

from ztsim.db import schema
from ztsim.radius import (
    Code,
    Packet,
    SharedSecret,
    sign_request,
)
from ztsim.radius.dictionary import make_attribute
from ztsim.radius.store.snapshot import load_pools
from ztsim.sealing import Sealer
from ztsim.sessions.allocator import DEFAULT_BLOCK_PREFIX, blocks_of, usable
from ztsim.sessions.leases import record_leases

from support.radius_world import (
    RADCLIENT,
    SECRET,
    RunningAaa,
    World,
    access,
    build_world,
    radclient,
)

pytestmark = pytest.mark.skipif(
    RADCLIENT is None, reason="needs radclient (Debian package freeradius-utils)"
)


def _first_block_leased(engine: Engine, world: World, *, claim_the_rest: bool) -> None:
    """Lease every address of the pool's first block to other SIMs, so the AAA process
    starts with that block and no free address; optionally let another process have
    claimed every other block."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        pool = load_pools(conn)[world.org_id]
        first, *rest = blocks_of(pool.network, DEFAULT_BLOCK_PREFIX)
        addresses = usable(first, pool.network)
        record_leases(conn, [(pool, f"99999{n:010d}", a, now) for n, a in enumerate(addresses)])
        if claim_the_rest:
            conn.execute(
                insert(schema.ip_blocks),
                [
                    {
                        "pool_id": pool.id,
                        "org_id": pool.org_id,
                        "start": str(block.network_address),
                        "owner": "another-process",
                        "claimed_at": now,
                    }
                    for block in rest
                ],
            )


def _attach_retransmitted(engine: Engine, sealer: Sealer, world: World) -> tuple[str, int]:
    aaa = RunningAaa(engine, sealer)
    try:
        # radclient retransmits after 1 s without an answer.
        out = radclient(aaa.auth_port, "auth", access(world.active), tries=3)
        return out, aaa.counters.no_address_yet
    finally:
        aaa.close()


def test_a_dry_pool_gets_its_next_block_and_the_retransmission_its_address(
    sqlite_engine: Engine, sealer: Sealer
) -> None:
    world = build_world(sqlite_engine, sealer)
    _first_block_leased(sqlite_engine, world, claim_the_rest=False)
    out, waited = _attach_retransmitted(sqlite_engine, sealer, world)
    assert "Received Access-Accept" in out, out
    # The pool's second /22 block, claimed by the service while the first attempt waited.
    assert "Framed-IP-Address = 10.64.4.0" in out, out
    assert waited >= 1
    blocks = schema.ip_blocks
    with sqlite_engine.connect() as conn:
        starts = conn.execute(select(blocks.c.start).order_by(blocks.c.id)).scalars().all()
    assert starts == ["10.64.0.0", "10.64.4.0"]


def test_a_pool_with_no_block_left_refuses_the_sim(sqlite_engine: Engine, sealer: Sealer) -> None:
    world = build_world(sqlite_engine, sealer)
    _first_block_leased(sqlite_engine, world, claim_the_rest=True)
    out, waited = _attach_retransmitted(sqlite_engine, sealer, world)
    assert "Received Access-Reject" in out, out
    assert 'Reply-Message = "no address available"' in out, out
    # The first attempt waited while the service tried to claim a block.
    assert waited >= 1


# -- accounting answered after its commit -----------------------------------------------


def _acct_datagram(session_id: str, imsi: str) -> bytes:
    request = Packet(
        Code.ACCOUNTING_REQUEST,
        7,
        bytes(16),
        (
            make_attribute("Acct-Status-Type", 1),
            make_attribute("Acct-Session-Id", session_id),
            make_attribute("User-Name", imsi),
            make_attribute("3GPP-IMSI", imsi),
        ),
    )
    return sign_request(request, SharedSecret(SECRET)).encode()


def test_accounting_is_answered_after_its_commit_without_waiting_for_the_tick(
    sqlite_engine: Engine, sealer: Sealer
) -> None:
    world = build_world(sqlite_engine, sealer)
    # A tick far away: only the pending reply can start the commit.
    aaa = RunningAaa(sqlite_engine, sealer, flush_seconds=60.0)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gateway:
            gateway.settimeout(5)
            for n in range(3):
                began = time.monotonic()
                gateway.sendto(_acct_datagram(f"w-{n}", world.active), ("127.0.0.1", aaa.acct_port))
                reply = Packet.decode(gateway.recv(4096))
                assert reply.code is Code.ACCOUNTING_RESPONSE
                assert time.monotonic() - began < 2
                # Answered, hence already in the database.
                with sqlite_engine.connect() as conn:
                    ids = conn.execute(select(schema.radius_sessions.c.acct_session_id)).scalars()
                    assert f"w-{n}" in set(ids)
            # The retransmission of a committed request gets the cached reply.
            gateway.sendto(_acct_datagram("w-2", world.active), ("127.0.0.1", aaa.acct_port))
            assert Packet.decode(gateway.recv(4096)).code is Code.ACCOUNTING_RESPONSE
        assert aaa.counters.duplicates == 1
    finally:
        aaa.close()
