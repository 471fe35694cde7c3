"""Revocation: an API call that suspends a SIM, disables its identity or changes its
binding puts a Disconnect-Request (RFC 5176) on the wire to the gateway within 1 s.
Address blocks: a dry pool gets its next block off the hot path, and the gateway's
retransmission its address; a pool with no block left gets Access-Reject."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select

from ztsim.api.app import create_app
from ztsim.api.context import ApiContext
from ztsim.db import schema
from ztsim.identity import token_store
from ztsim.identity.roles import Role
from ztsim.radius import (
    Code,
    Packet,
    SharedSecret,
    decode_attributes,
    encode_reply,
    make_reply,
    sign_request,
    verify_request,
)
from ztsim.radius.dictionary import make_attribute
from ztsim.radius.store.snapshot import load_pools
from ztsim.sealing import Sealer
from ztsim.sessions.allocator import DEFAULT_BLOCK_PREFIX, blocks_of, usable
from ztsim.sessions.changes import Notifier
from ztsim.sessions.leases import record_leases

from support.leaks import LEAKS
from support.radius_world import (
    RADCLIENT,
    SECRET,
    RunningAaa,
    World,
    access,
    accounting,
    build_world,
    radclient,
)

pytestmark = pytest.mark.skipif(
    RADCLIENT is None, reason="needs radclient (Debian package freeradius-utils)"
)


@dataclass
class Setup:
    world: World
    aaa: RunningAaa
    api: TestClient
    auth: dict[str, str]
    coa: socket.socket


@pytest.fixture
def setup(sqlite_engine: Engine, sealer: Sealer) -> Iterator[Setup]:
    world = build_world(sqlite_engine, sealer)
    coa = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    coa.bind(("127.0.0.1", 0))
    coa.settimeout(2.0)
    with sqlite_engine.begin() as conn:
        conn.execute(schema.radius_gateways.update().values(coa_port=coa.getsockname()[1]))
        _, token = token_store.issue(
            conn,
            world.org_id,
            name="admin",
            role=Role.ADMIN,
            identity_id=None,
            created_by="test",
            now=datetime.now(UTC),
        )
    LEAKS.add_secret(token)
    aaa = RunningAaa(sqlite_engine, sealer, coa_tries=2, coa_timeout=0.3)
    notifier = Notifier()
    notifier.subscribe(aaa.service.notify)
    app = create_app(ApiContext(sqlite_engine, sealer, notify=notifier))
    with TestClient(app, raise_server_exceptions=True) as client:
        yield Setup(world, aaa, client, {"Authorization": f"Bearer {token}"}, coa)
    aaa.close()
    coa.close()


def _events(engine: Engine, kind: str) -> list[tuple[str, str, dict[str, object]]]:
    e = schema.events
    with engine.connect() as conn:
        rows = conn.execute(
            select(e.c.outcome, e.c.reason, e.c.payload).where(e.c.kind == kind).order_by(e.c.id)
        ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def _start_session(s: Setup, session_id: str = "live-1") -> None:
    # Accounting is taken only for the address ztsim leased: the SIM attaches first.
    out = radclient(s.aaa.auth_port, "auth", access(s.world.active))
    assert "Received Access-Accept" in out, out
    out = radclient(s.aaa.acct_port, "acct", accounting("Start", session_id, s.world.active))
    assert "Received Accounting-Response" in out, out


def _revoke(s: Setup, how: str) -> None:
    w = s.world
    if how == "suspend":
        r = s.api.post(
            f"/api/v1/sims/{w.active_iccid}/suspend", json={"reason": "stolen"}, headers=s.auth
        )
    elif how == "retire":
        r = s.api.post(
            f"/api/v1/sims/{w.active_iccid}/retire", json={"reason": "lost"}, headers=s.auth
        )
    elif how == "disable":
        r = s.api.patch(
            f"/api/v1/identities/{w.identity_id}", json={"enabled": False}, headers=s.auth
        )
    else:
        device = s.api.post("/api/v1/devices", json={"imei": "356938035643809"}, headers=s.auth)
        assert device.status_code == 201, device.text
        r = s.api.put(
            f"/api/v1/sims/{w.active_iccid}/binding",
            json={"device_id": device.json()["id"], "reason": "new phone"},
            headers=s.auth,
        )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("suspend", "sim_not_active"),
        ("retire", "sim_not_active"),
        ("disable", "identity_disabled"),
        ("rebind", "imei_mismatch"),
    ],
)
def test_api_change_sends_a_disconnect_within_one_second(
    setup: Setup, sqlite_engine: Engine, how: str, reason: str
) -> None:
    _start_session(setup)
    started = time.monotonic()
    _revoke(setup, how)
    datagram, peer = setup.coa.recvfrom(4096)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0
    request = Packet.decode(datagram)
    assert request.code is Code.DISCONNECT_REQUEST
    secret = SharedSecret(SECRET)
    verify_request(request, secret, require_message_authenticator=True)
    attributes = decode_attributes(request)
    assert attributes.get("Acct-Session-Id") == "live-1"
    assert attributes.get("User-Name") == setup.world.active
    assert str(attributes.get("Framed-IP-Address")) == "10.64.0.1"
    setup.coa.sendto(encode_reply(make_reply(request, Code.DISCONNECT_ACK), request, secret), peer)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        setup.aaa.flush()
        done = _events(sqlite_engine, "radius.disconnect")
        if done:
            break
        time.sleep(0.05)
    assert [(o, r) for o, r, _ in done] == [("success", reason)]
    assert done[0][2]["result"] == "ack"
    assert done[0][2]["attempts"] == 1
    with sqlite_engine.connect() as conn:
        stopped = conn.execute(select(schema.radius_sessions.c.stop_cause)).scalar_one()
    assert stopped == "disconnected"


def test_unanswered_disconnect_is_retried_then_recorded_as_failed(
    setup: Setup, sqlite_engine: Engine
) -> None:
    _start_session(setup)
    _revoke(setup, "suspend")
    first, _ = setup.coa.recvfrom(4096)
    second, _ = setup.coa.recvfrom(4096)
    # RFC 5080 §2.2.1: a retransmission is the same packet, same Identifier.
    assert first == second
    deadline = time.monotonic() + 5
    done: list[tuple[str, str, dict[str, object]]] = []
    while time.monotonic() < deadline and not done:
        time.sleep(0.1)
        setup.aaa.flush()
        done = _events(sqlite_engine, "radius.disconnect")
    assert [(o, r) for o, r, _ in done] == [("failure", "sim_not_active")]
    assert done[0][2]["result"] == "timeout"
    assert done[0][2]["attempts"] == 2
    # Still live: the gateway did not confirm.
    with sqlite_engine.connect() as conn:
        stopped_at = conn.execute(select(schema.radius_sessions.c.stopped_at)).scalar_one()
    assert stopped_at is None


def test_unrelated_change_disconnects_nothing_and_new_attach_is_refused(
    setup: Setup, sqlite_engine: Engine
) -> None:
    _start_session(setup)
    r = setup.api.post(
        f"/api/v1/sims/{setup.world.unbound_iccid}/suspend",
        json={"reason": "x"},
        headers=setup.auth,
    )
    assert r.status_code == 200
    setup.coa.settimeout(0.5)
    with pytest.raises(TimeoutError):
        setup.coa.recvfrom(4096)
    _revoke(setup, "suspend")
    setup.coa.settimeout(2.0)
    assert Packet.decode(setup.coa.recvfrom(4096)[0]).code is Code.DISCONNECT_REQUEST


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
