"""The AAA server end to end: Debian's radclient (FreeRADIUS dictionary names, including
dictionary.3gpp) against the running server on loopback, high random ports."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from ztsim.db import schema
from ztsim.feed.change import Topic
from ztsim.mmsg import batch_calls
from ztsim.radius import Code, Packet, SharedSecret, sign_request
from ztsim.radius.dictionary import make_attribute
from ztsim.sealing import Sealer
from ztsim.sessions import repository as sessions_repo

from support.radius_feed import publish
from support.radius_world import (
    APN,
    OTHER_IMEISV,
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


@pytest.fixture
def world(sqlite_engine: Engine, sealer: Sealer) -> World:
    return build_world(sqlite_engine, sealer)


@pytest.fixture
def aaa(sqlite_engine: Engine, sealer: Sealer, world: World) -> Iterator[RunningAaa]:
    running = RunningAaa(sqlite_engine, sealer)
    yield running
    running.close()


def _events(engine: Engine, kind: str) -> list[tuple[str, str, str, dict[str, object]]]:
    e = schema.events
    with engine.connect() as conn:
        rows = conn.execute(
            select(e.c.subject, e.c.outcome, e.c.reason, e.c.payload)
            .where(e.c.kind == kind)
            .order_by(e.c.id)
        ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def _framed_ip(output: str) -> IPv4Address:
    line = next(x for x in output.splitlines() if "Framed-IP-Address" in x)
    return IPv4Address(line.split("=")[1].strip())


def test_accept_hands_out_an_address_from_the_pool_dns_and_timeout(
    aaa: RunningAaa, world: World, sqlite_engine: Engine
) -> None:
    out = radclient(aaa.auth_port, "auth", access(world.active))
    assert "Received Access-Accept" in out, out
    address = _framed_ip(out)
    assert address in IPv4Network("10.64.0.0/16")
    assert "MS-Primary-DNS-Server = 192.0.2.53" in out
    assert "MS-Secondary-DNS-Server = 192.0.2.54" in out
    assert "Session-Timeout = 86400" in out
    # Stable per SIM: the next attach gets the same address.
    again = radclient(aaa.auth_port, "auth", access(world.active))
    assert _framed_ip(again) == address
    aaa.flush()
    decisions = _events(sqlite_engine, "radius.access")
    assert [(d[0], d[1], d[2]) for d in decisions] == [
        (f"sim:{world.active_iccid}", "success", "accepted")
    ] * 2
    assert decisions[0][3]["ue_address"] == str(address)
    leases = schema.ip_leases
    with sqlite_engine.connect() as conn:
        rows = conn.execute(select(leases.c.imsi, leases.c.address)).all()
    assert rows == [(world.active, str(address))]


@pytest.mark.parametrize(
    ("who", "request_text", "reason", "message"),
    [
        ("stock", None, "sim_not_active", "SIM is not active"),
        ("suspended", None, "sim_not_active", "SIM is not active"),
        ("disabled", None, "identity_disabled", "subscriber is disabled"),
        ("unbound", None, "no_bound_device", "SIM is not bound to a device"),
        ("active", "wrong-apn", "apn_not_allowed", "APN not allowed"),
        ("active", "no-imei", "imei_missing", "no IMEISV in the request"),
        ("active", "other-imei", "imei_mismatch", "device is not the one bound to this SIM"),
        ("unknown", None, "unknown_imsi", "unknown subscriber"),
    ],
)
def test_reject_for_each_reason(
    aaa: RunningAaa,
    world: World,
    sqlite_engine: Engine,
    who: str,
    request_text: str | None,
    reason: str,
    message: str,
) -> None:
    imsi = "001019999999999" if who == "unknown" else getattr(world, who)
    if request_text == "wrong-apn":
        text = access(imsi, apn="internet")
    elif request_text == "no-imei":
        text = access(imsi, imeisv=None)
    elif request_text == "other-imei":
        text = access(imsi, imeisv=OTHER_IMEISV)
    else:
        text = access(imsi)
    out = radclient(aaa.auth_port, "auth", text)
    assert "Received Access-Reject" in out, out
    assert f'Reply-Message = "{message}"' in out
    assert "Framed-IP-Address" not in out
    aaa.flush()
    decisions = _events(sqlite_engine, "radius.access")
    assert [(d[1], d[2]) for d in decisions] == [("denied", reason)]
    risks = _events(sqlite_engine, "risk.device_swap")
    assert len(risks) == (1 if reason == "imei_mismatch" else 0)


def test_trust_on_first_attach_binds_the_first_device_and_refuses_a_second(
    sqlite_engine: Engine, sealer: Sealer, world: World
) -> None:
    with sqlite_engine.begin() as conn:
        conn.execute(schema.orgs.update().values(tofu_binding=True))
    running = RunningAaa(sqlite_engine, sealer)
    try:
        out = radclient(running.auth_port, "auth", access(world.unbound))
        assert "Received Access-Accept" in out, out
        out = radclient(running.auth_port, "auth", access(world.unbound, imeisv=OTHER_IMEISV))
        assert "Received Access-Reject" in out, out
        running.flush()
    finally:
        running.close()
    with sqlite_engine.connect() as conn:
        device_id = conn.execute(
            select(schema.sims.c.device_id).where(schema.sims.c.imsi == world.unbound)
        ).scalar_one()
        imei = conn.execute(
            select(schema.devices.c.imei).where(schema.devices.c.id == device_id)
        ).scalar_one()
    assert imei == world.device_imei
    reasons = [d[2] for d in _events(sqlite_engine, "radius.access")]
    assert reasons == ["bound_on_first_attach", "imei_mismatch"]


def test_same_imsi_live_on_another_imei_is_a_clone(
    aaa: RunningAaa, world: World, sqlite_engine: Engine
) -> None:
    # A live session for the SIM (at its leased address) from a device reporting another IMEI.
    assert "Received Access-Accept" in radclient(aaa.auth_port, "auth", access(world.active))
    start = accounting("Start", "clone-1", world.active).replace("3534900698733201", OTHER_IMEISV)
    assert "Received Accounting-Response" in radclient(aaa.acct_port, "acct", start)
    out = radclient(aaa.auth_port, "auth", access(world.active))
    assert "Received Access-Reject" in out, out
    assert "already in use on another device" in out
    aaa.flush()
    assert [d[2] for d in _events(sqlite_engine, "risk.clone")] == ["clone_suspected"]


def _live(engine: Engine, org_id: str) -> list[sessions_repo.StoredSession]:
    with engine.connect() as conn:
        return sessions_repo.list_sessions(conn, org_id, sessions_repo.SessionFilter())[0]


def test_accounting_start_interim_stop_builds_the_session_table(
    aaa: RunningAaa, world: World, sqlite_engine: Engine
) -> None:
    assert "Received Access-Accept" in radclient(aaa.auth_port, "auth", access(world.active))
    out = radclient(aaa.acct_port, "acct", accounting("Start", "s-1", world.active))
    assert "Received Accounting-Response" in out, out
    aaa.flush()
    (live,) = _live(sqlite_engine, world.org_id)
    s = live.session
    assert (s.imsi, s.iccid, s.identity_id, s.ue_address, s.apn, s.rat) == (
        world.active,
        world.active_iccid,
        world.identity_id,
        "10.64.0.1",
        APN,
        "EUTRAN",
    )
    assert s.imei == world.device_imei
    assert s.gateway_id == world.gateway_id
    assert s.location is not None
    assert s.location["type"] == "TAI_AND_ECGI"
    interim = accounting("Interim-Update", "s-1", world.active).replace(
        "3GPP-RAT-Type = EUTRAN", "3GPP-RAT-Type = UTRAN"
    )
    assert "Received Accounting-Response" in radclient(aaa.acct_port, "acct", interim)
    aaa.flush()
    (live,) = _live(sqlite_engine, world.org_id)
    assert live.session.rat == "UTRAN"
    stop = accounting("Stop", "s-1", world.active, extra="Acct-Terminate-Cause = User-Request\n")
    assert "Received Accounting-Response" in radclient(aaa.acct_port, "acct", stop)
    aaa.flush()
    assert _live(sqlite_engine, world.org_id) == []
    with sqlite_engine.connect() as conn:
        (ended,), _ = sessions_repo.list_sessions(
            conn, world.org_id, sessions_repo.SessionFilter(live=False)
        )
    assert ended.session.stopped_at is not None
    assert ended.session.stop_cause == "stop"
    kinds = [e[0] for e in _events(sqlite_engine, "radius.session_started")]
    assert kinds == [f"sim:{world.active_iccid}"]


def test_stop_without_session_stop_indicator_ends_one_bearer_only(
    aaa: RunningAaa, world: World, sqlite_engine: Engine
) -> None:
    assert "Received Access-Accept" in radclient(aaa.auth_port, "auth", access(world.active))
    for sid in ("b-1", "b-2", "b-3"):
        radclient(aaa.acct_port, "acct", accounting("Start", sid, world.active))
    radclient(aaa.acct_port, "acct", accounting("Stop", "b-1", world.active))
    aaa.flush()
    assert {x.session.acct_session_id for x in _live(sqlite_engine, world.org_id)} == {
        "b-2",
        "b-3",
    }
    radclient(
        aaa.acct_port,
        "acct",
        accounting("Stop", "b-2", world.active, extra="3GPP-Session-Stop-Indicator = 1\n"),
    )
    aaa.flush()
    assert _live(sqlite_engine, world.org_id) == []


def test_accounting_on_ends_every_session_of_the_gateway(
    aaa: RunningAaa, world: World, sqlite_engine: Engine
) -> None:
    # Two bearers of one SIM: accounting is taken only for the address it was leased.
    assert "Received Access-Accept" in radclient(aaa.auth_port, "auth", access(world.active))
    radclient(aaa.acct_port, "acct", accounting("Start", "on-1", world.active))
    radclient(aaa.acct_port, "acct", accounting("Start", "on-2", world.active))
    aaa.flush()
    assert len(_live(sqlite_engine, world.org_id)) == 2
    out = radclient(
        aaa.acct_port, "acct", 'Acct-Status-Type = Accounting-On\nNAS-Identifier = "pgw-1"\n'
    )
    assert "Received Accounting-Response" in out, out
    aaa.flush()
    assert _live(sqlite_engine, world.org_id) == []
    stops = _events(sqlite_engine, "radius.session_stopped")
    assert sorted(s[2] for s in stops) == ["accounting_on", "accounting_on"]


def _udp(
    port: int, datagram: bytes, *, source: str = "127.0.0.1", times: int = 1
) -> list[bytes | None]:
    """Send the same datagram `times` times from one socket (a retransmission keeps the
    source port); the reply to each."""
    replies: list[bytes | None] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(1.0)
        for _ in range(times):
            sock.sendto(datagram, ("127.0.0.1", port))
            try:
                replies.append(sock.recv(4096))
            except TimeoutError:
                replies.append(None)
    return replies


def test_retransmission_gets_the_same_reply_and_changes_nothing(
    aaa: RunningAaa, world: World, sqlite_engine: Engine
) -> None:
    secret = SharedSecret(SECRET)
    start = Packet(
        Code.ACCOUNTING_REQUEST,
        7,
        bytes(16),
        (
            make_attribute("Acct-Status-Type", 1),
            make_attribute("Acct-Session-Id", "rt-1"),
            make_attribute("User-Name", world.active),
        ),
    )
    wire = sign_request(start, secret).encode()
    first, second = _udp(aaa.acct_port, wire, times=2)
    assert first is not None
    assert first == second
    request = Packet(
        Code.ACCESS_REQUEST,
        9,
        bytes(range(16)),
        (
            make_attribute("User-Name", world.active),
            make_attribute("3GPP-IMSI", world.active),
            make_attribute("3GPP-IMEISV", "3534900698733201"),
            make_attribute("Called-Station-Id", APN),
        ),
    )
    auth_wire = sign_request(request, secret, add_message_authenticator=True).encode()
    first, second = _udp(aaa.auth_port, auth_wire, times=2)
    assert first is not None
    assert first == second
    aaa.flush()
    assert aaa.counters.duplicates == 2
    assert len(_events(sqlite_engine, "radius.session_started")) == 1
    assert len(_events(sqlite_engine, "radius.access")) == 1
    # radclient's own retransmissions (it retries on timeout) are answered too.
    out = radclient(aaa.acct_port, "acct", accounting("Start", "rt-1", world.active), tries=3)
    assert "Received Accounting-Response" in out


def test_wrong_secret_is_dropped_and_counted(aaa: RunningAaa, world: World) -> None:
    out = radclient(aaa.auth_port, "auth", access(world.active), secret="not-the-secret-at-all")
    assert "Received Access" not in out
    assert "No reply from server" in out
    out = radclient(
        aaa.acct_port, "acct", accounting("Start", "w", world.active), secret="nope-nope-nope"
    )
    assert "No reply from server" in out
    assert aaa.counters.bad_authenticator == 2


def test_missing_message_authenticator_is_dropped_unless_the_gateway_allows_it(
    sqlite_engine: Engine, sealer: Sealer, aaa: RunningAaa, world: World
) -> None:
    out = radclient(aaa.auth_port, "auth", access(world.active, ma=False))
    assert "No reply from server" in out, out
    assert aaa.counters.bad_authenticator == 1
    # Changed by another process: the AAA role learns it from the change feed.
    with sqlite_engine.begin() as conn:
        conn.execute(schema.radius_gateways.update().values(require_message_authenticator=False))
        seq = publish(conn, world.org_id, Topic.NETWORK, world.org_id)
    assert aaa.service.wait_applied(seq, timeout=5)
    out = radclient(aaa.auth_port, "auth", access(world.active, ma=False))
    assert "Received Access-Accept" in out, out


def test_unknown_client_and_garbage_are_dropped_and_the_server_keeps_answering(
    aaa: RunningAaa, world: World
) -> None:
    assert _udp(aaa.auth_port, b"\x01\x02\x00\x14" + bytes(16), source="127.0.0.2") == [None]
    assert aaa.counters.unknown_client == 1
    for junk in (b"", b"\x01", b"\x01\x02\x00\x30" + bytes(16), b"\x63" * 40):
        assert _udp(aaa.auth_port, junk) == [None]
    assert aaa.counters.malformed == 4
    assert "Received Access-Accept" in radclient(aaa.auth_port, "auth", access(world.active))


def test_accounting_without_imei_or_apn_takes_them_from_the_accepted_attach(
    aaa: RunningAaa, world: World, sqlite_engine: Engine
) -> None:
    assert "Received Access-Accept" in radclient(aaa.auth_port, "auth", access(world.active))
    bare = f'Acct-Status-Type = Start\nAcct-Session-Id = "bare-1"\nUser-Name = "{world.active}"\n'
    assert "Received Accounting-Response" in radclient(aaa.acct_port, "acct", bare)
    aaa.flush()
    (live,) = _live(sqlite_engine, world.org_id)
    assert (live.session.imei, live.session.apn) == (world.device_imei, APN)
    # A change re-checks the SIM's live sessions: this one is still allowed, so nothing
    # is sent.
    with sqlite_engine.begin() as conn:
        seq = publish(conn, world.org_id, Topic.SIM, world.active_iccid)
    assert aaa.service.wait_applied(seq, timeout=5)
    # A disconnect would be in flight now (its CoA port has no listener, so it waits).
    assert not aaa.service.revoker.in_flight


@pytest.mark.parametrize("batched", [True, False])
def test_many_gateway_requests_at_once_batched_or_not(
    batched: bool, sqlite_engine: Engine, sealer: Sealer, world: World, tmp_path: Path
) -> None:
    """radclient keeps many requests in flight: each answered once, whichever I/O path."""
    running = RunningAaa(sqlite_engine, sealer, batched_auth=batched)
    try:
        assert running.server.auth.batched == (batched and batch_calls() is not None)
        requests = tmp_path / "requests"
        requests.write_text(
            "\n".join([access(world.active)] * 60 + [access(world.active, apn="x")])
        )
        assert RADCLIENT is not None
        done = subprocess.run(
            [
                *(RADCLIENT, "-q", "-s", "-f", str(requests), "-p", "30", "-r", "2", "-t", "2"),
                *(f"127.0.0.1:{running.auth_port}", "auth", SECRET),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        summary = done.stdout + done.stderr
        assert re.search(r"Accepted\s*:\s*60\b", summary), summary
        assert re.search(r"Rejected\s*:\s*1\b", summary), summary
        assert running.counters.answered == 61
        out = radclient(running.auth_port, "auth", access(world.active), secret="not-it-at-all")
        assert "No reply from server" in out
        assert running.counters.bad_authenticator == 1
    finally:
        running.close()
