"""Revocation through the change feed: a change committed by another transaction (as the
CLI or a separate API process makes it: the state change and its outbox row) puts a
Disconnect-Request (RFC 5176) on the wire within 1 s, and refuses the SIM's next
Access-Request from the moment it is applied, whether the gateway answers or not.
Disconnect-Requests are retransmitted with doubling waits; ACK, NAK (with its
Error-Cause) and timeout are each an event."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from ztsim.db import schema
from ztsim.feed.change import Topic
from ztsim.identity import repository as identities
from ztsim.inventory import service as inventory
from ztsim.inventory.lifecycle import SimAction
from ztsim.radius import (
    Attribute,
    Code,
    ErrorCause,
    Packet,
    SharedSecret,
    decode_attributes,
    encode_reply,
    error_cause,
    make_reply,
    verify_request,
)
from ztsim.radius.serve.coa import backoff
from ztsim.sealing import Sealer

from support.radius_feed import change_sim, publish
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

TRIES = 3
TIMEOUT = 0.25  # the first wait; then 0.5, 1.0
SECRET_ = SharedSecret(SECRET)


@dataclass
class Setup:
    engine: Engine
    world: World
    aaa: RunningAaa
    coa: socket.socket  # the gateway's Dynamic Authorization Server, played by the test


@pytest.fixture
def setup(engine: Engine, sealer: Sealer) -> Iterator[Setup]:
    world = build_world(engine, sealer)
    coa = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    coa.bind(("127.0.0.1", 0))
    coa.settimeout(3.0)
    with engine.begin() as conn:
        conn.execute(schema.radius_gateways.update().values(coa_port=coa.getsockname()[1]))
    aaa = RunningAaa(engine, sealer, coa_tries=TRIES, coa_timeout=TIMEOUT)
    try:
        yield Setup(engine, world, aaa, coa)
    finally:
        aaa.close()
        coa.close()


def _events(engine: Engine, kind: str) -> list[tuple[str, str, dict[str, object]]]:
    e = schema.events
    with engine.connect() as conn:
        rows = conn.execute(
            select(e.c.outcome, e.c.reason, e.c.payload).where(e.c.kind == kind).order_by(e.c.id)
        ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def _wait_events(
    s: Setup, kind: str, seconds: float = 5.0
) -> list[tuple[str, str, dict[str, object]]]:
    deadline = time.monotonic() + seconds
    while True:
        s.aaa.flush()
        found = _events(s.engine, kind)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _start_session(s: Setup, session_id: str = "live-1") -> None:
    # Accounting is taken only for the address ztsim leased: the SIM attaches first. Set-up,
    # not what is tested: retransmitted as a gateway would, should a loaded machine be slow.
    out = radclient(s.aaa.auth_port, "auth", access(s.world.active), tries=3)
    assert "Received Access-Accept" in out, out
    start = accounting("Start", session_id, s.world.active)
    out = radclient(s.aaa.acct_port, "acct", start, tries=3)
    assert "Received Accounting-Response" in out, out


def _revoke(s: Setup, how: str) -> int:
    """Make the change in a transaction of the test's own, as another process would,
    with its outbox row; the change's number."""
    w, now = s.world, datetime.now(UTC)
    if how == "suspend":
        return change_sim(s.engine, w.org_id, w.active_iccid, SimAction.SUSPEND)
    if how == "retire":
        return change_sim(s.engine, w.org_id, w.active_iccid, SimAction.RETIRE)
    with s.engine.begin() as conn:
        if how == "disable":
            identities.update_identity(conn, w.org_id, w.identity_id, name=None, enabled=False)
            return publish(conn, w.org_id, Topic.IDENTITY, w.identity_id)
        device = inventory.register_device(
            conn, w.org_id, imei="356938035643809", eid=None, owner_id=None, name="new",
            actor="t", now=now,
        )  # fmt: skip
        inventory.set_binding(
            conn, w.org_id, w.active_iccid, device.id, actor="t", reason="new phone", now=now
        )
        return publish(conn, w.org_id, Topic.SIM, w.active_iccid)


def _ack(s: Setup, datagram: bytes, peer: tuple[str, int], code: Code, *extra: Attribute) -> None:
    request = Packet.decode(datagram)
    s.coa.sendto(encode_reply(make_reply(request, code, extra), request, SECRET_), peer)


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("suspend", "sim_not_active"),
        ("retire", "sim_not_active"),
        ("disable", "identity_disabled"),
        ("rebind", "imei_mismatch"),
    ],
)
def test_a_change_committed_elsewhere_sends_a_disconnect_within_one_second(
    setup: Setup, how: str, reason: str
) -> None:
    _start_session(setup)
    started = time.monotonic()
    _revoke(setup, how)
    datagram, peer = setup.coa.recvfrom(4096)
    assert time.monotonic() - started < 1.0
    request = Packet.decode(datagram)
    assert request.code is Code.DISCONNECT_REQUEST
    verify_request(request, SECRET_, require_message_authenticator=True)
    attributes = decode_attributes(request)
    assert attributes.get("Acct-Session-Id") == "live-1"
    assert attributes.get("User-Name") == setup.world.active
    assert str(attributes.get("Framed-IP-Address")) == "10.64.0.1"
    _ack(setup, datagram, peer, Code.DISCONNECT_ACK)
    done = _wait_events(setup, "radius.disconnect")
    assert [(o, r) for o, r, _ in done] == [("success", reason)]
    assert (done[0][2]["result"], done[0][2]["attempts"]) == ("ack", 1)
    # Ended in the table, and on the feed for the other planes.
    deadline = time.monotonic() + 5
    stop_cause = None
    while stop_cause is None and time.monotonic() < deadline:
        setup.aaa.flush()
        with setup.engine.connect() as conn:
            stop_cause = conn.execute(select(schema.radius_sessions.c.stop_cause)).scalar_one()
    assert stop_cause == "disconnected"
    # And in the log, as an Accounting-Stop would have ended it.
    ended = _wait_events(setup, "radius.session_stopped")
    assert [(o, r, p["acct_session_id"]) for o, r, p in ended] == [
        ("success", "disconnected", "live-1")
    ]
    o = schema.change_outbox
    with setup.engine.connect() as conn:
        stopped = conn.execute(
            select(o.c.payload).where(o.c.topic == "session", o.c.key == "10.64.0.1")
        ).scalars()
        assert any(p["stopped"] for p in stopped)


def test_a_gateway_that_never_answers_still_gets_access_reject_at_once(setup: Setup) -> None:
    _start_session(setup)
    began = time.monotonic()
    seq = _revoke(setup, "suspend")
    assert setup.aaa.service.wait_applied(seq, timeout=1.0)
    out = radclient(setup.aaa.auth_port, "auth", access(setup.world.active))
    assert "Received Access-Reject" in out, out
    assert 'Reply-Message = "SIM is not active"' in out, out
    # The Disconnect-Request went out meanwhile; nobody answers it.
    setup.coa.recvfrom(4096)
    assert time.monotonic() - began < 1.0 + 2.0  # radclient's own start-up, generously


def test_unanswered_disconnects_are_retransmitted_with_doubling_waits_then_recorded(
    setup: Setup,
) -> None:
    assert backoff(TIMEOUT, TRIES) == [0.25, 0.5, 1.0]
    _start_session(setup)
    _revoke(setup, "suspend")
    arrivals: list[tuple[float, bytes]] = []
    for _ in range(TRIES):
        datagram, _peer = setup.coa.recvfrom(4096)
        arrivals.append((time.monotonic(), datagram))
    # RFC 5080 §2.2.1: a retransmission is the same packet, same Identifier.
    assert len({d for _, d in arrivals}) == 1
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(arrivals)]
    # Each wait at least its timeout (timers never fire early), the second twice the first.
    assert gaps[0] >= 0.25 - 0.01
    assert gaps[1] >= 0.5 - 0.01
    assert gaps[1] > gaps[0] * 1.5
    setup.coa.settimeout(1.5)
    with pytest.raises(TimeoutError):
        setup.coa.recvfrom(4096)  # no fourth try
    done = _wait_events(setup, "radius.disconnect")
    assert [(o, r) for o, r, _ in done] == [("failure", "sim_not_active")]
    assert (done[0][2]["result"], done[0][2]["attempts"]) == ("timeout", TRIES)
    # Still live: the gateway did not confirm.
    with setup.engine.connect() as conn:
        assert conn.execute(select(schema.radius_sessions.c.stopped_at)).scalar_one() is None


def test_a_nak_is_recorded_with_its_error_cause(setup: Setup) -> None:
    _start_session(setup)
    _revoke(setup, "disable")
    datagram, peer = setup.coa.recvfrom(4096)
    _ack(
        setup,
        datagram,
        peer,
        Code.DISCONNECT_NAK,
        error_cause(ErrorCause.SESSION_CONTEXT_NOT_FOUND),
    )
    done = _wait_events(setup, "radius.disconnect")
    assert [(o, r) for o, r, _ in done] == [("failure", "identity_disabled")]
    payload = done[0][2]
    assert (payload["result"], payload["attempts"], payload["error_cause"]) == ("nak", 1, 503)
    with setup.engine.connect() as conn:
        assert conn.execute(select(schema.radius_sessions.c.stopped_at)).scalar_one() is None


def test_an_unrelated_change_disconnects_nothing(setup: Setup) -> None:
    _start_session(setup)
    w = setup.world
    seq = change_sim(setup.engine, w.org_id, w.unbound_iccid, SimAction.SUSPEND)
    assert setup.aaa.service.wait_applied(seq, timeout=5)
    setup.coa.settimeout(0.5)
    with pytest.raises(TimeoutError):
        setup.coa.recvfrom(4096)
    assert not setup.aaa.service.revoker.in_flight
    _revoke(setup, "suspend")
    setup.coa.settimeout(2.0)
    assert Packet.decode(setup.coa.recvfrom(4096)[0]).code is Code.DISCONNECT_REQUEST
