"""Status-Server (RFC 5997) end to end: Debian's radclient `status` against the running AAA
server on both ports, as a packet gateway health-checks its AAA server; and the same
datagrams from a plain socket where radclient cannot go (a retransmission, another source
address)."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from ztsim.db import schema
from ztsim.radius import Code, Packet, SharedSecret, sign_request, verify_reply
from ztsim.sealing import Sealer

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

# radclient sends the attributes it reads; a Status-Server must carry a Message-Authenticator
# (RFC 5997 §3), which radclient computes when the list names one.
STATUS = "Message-Authenticator = 0x00\n"
# radclient then sends no Message-Authenticator at all.
STATUS_WITHOUT_MA = 'NAS-Identifier = "pgw-1"\n'


@pytest.fixture
def world(sqlite_engine: Engine, sealer: Sealer) -> World:
    return build_world(sqlite_engine, sealer)


@pytest.fixture
def aaa(sqlite_engine: Engine, sealer: Sealer, world: World) -> Iterator[RunningAaa]:
    running = RunningAaa(sqlite_engine, sealer)
    yield running
    running.close()


def _rows(engine: Engine) -> list[int]:
    """Events, sessions and leases in the database."""
    with engine.connect() as conn:
        return [
            conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (schema.events, schema.radius_sessions, schema.ip_leases)
        ]


def _received_attributes(output: str) -> list[str]:
    """The names of the attributes radclient printed for the reply it received."""
    reply = output.split("\nReceived ", 1)[1]
    return [
        line.split(" = ")[0].strip() for line in reply.splitlines()[1:] if line.startswith("\t")
    ]


def _status_datagram() -> tuple[Packet, bytes]:
    request = sign_request(Packet(Code.STATUS_SERVER, 42, os.urandom(16)), SharedSecret(SECRET))
    return request, request.encode()


def _udp(port: int, datagram: bytes, *, source: str = "127.0.0.1", times: int = 1) -> list[bytes]:
    """Send `datagram` `times` times from one socket (a retransmission keeps its source
    port); the replies that came, in order."""
    replies = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(1.0)
        for _ in range(times):
            sock.sendto(datagram, ("127.0.0.1", port))
            with contextlib.suppress(TimeoutError):
                replies.append(sock.recv(4096))
    return replies


def test_radclient_status_is_answered_on_both_ports_and_nothing_is_recorded(
    aaa: RunningAaa, sqlite_engine: Engine
) -> None:
    aaa.flush()
    before = _rows(sqlite_engine)
    # radclient checks the Response Authenticator and the Message-Authenticator: a reply
    # failing either is reported as invalid, not as received.
    auth = radclient(aaa.auth_port, "status", STATUS)
    assert "Received Access-Accept" in auth, auth
    acct = radclient(aaa.acct_port, "status", STATUS)
    assert "Received Accounting-Response" in acct, acct
    # A Message-Authenticator in each reply (on the accounting port too), and nothing else.
    assert _received_attributes(auth) == ["Message-Authenticator"], auth
    assert _received_attributes(acct) == ["Message-Authenticator"], acct
    aaa.flush()
    assert _rows(sqlite_engine) == before
    counters = aaa.counters
    assert (counters.status_server, counters.answered, counters.dropped) == (2, 2, 0)
    assert (counters.accepts, counters.rejects, counters.accounting) == (0, 0, 0)


@pytest.mark.parametrize("port", ["auth", "acct"])
def test_radclient_status_without_a_message_authenticator_gets_no_answer(
    aaa: RunningAaa, port: str
) -> None:
    out = radclient(getattr(aaa, f"{port}_port"), "status", STATUS_WITHOUT_MA)
    assert "No reply from server" in out, out
    assert "Received" not in out, out
    assert aaa.counters.bad_authenticator == 1
    assert aaa.counters.status_server == 0


@pytest.mark.parametrize("port", ["auth", "acct"])
def test_radclient_status_with_another_secret_gets_no_answer(aaa: RunningAaa, port: str) -> None:
    out = radclient(getattr(aaa, f"{port}_port"), "status", STATUS, secret="not-the-secret")
    assert "No reply from server" in out, out
    assert aaa.counters.bad_authenticator == 1


@pytest.mark.parametrize(
    ("port", "code"), [("auth", Code.ACCESS_ACCEPT), ("acct", Code.ACCOUNTING_RESPONSE)]
)
def test_a_retransmission_gets_the_same_reply(aaa: RunningAaa, port: str, code: Code) -> None:
    request, datagram = _status_datagram()
    first, second = _udp(getattr(aaa, f"{port}_port"), datagram, times=2)
    assert first == second
    reply = Packet.decode(first)
    assert reply.code is code
    verify_reply(reply, request, SharedSecret(SECRET), require_message_authenticator=True)
    assert aaa.counters.duplicates == 1


@pytest.mark.parametrize("port", ["auth", "acct"])
def test_an_unknown_client_gets_no_answer(aaa: RunningAaa, port: str) -> None:
    # The gateway is registered at 127.0.0.1; 127.0.0.2 is loopback too, and no client.
    _, datagram = _status_datagram()
    assert _udp(getattr(aaa, f"{port}_port"), datagram, source="127.0.0.2") == []
    assert aaa.counters.unknown_client == 1
    # The same datagram from the gateway's address is answered: only the source differed.
    assert len(_udp(getattr(aaa, f"{port}_port"), datagram)) == 1


def test_the_gateways_requests_are_answered_as_before_around_health_checks(
    aaa: RunningAaa, world: World
) -> None:
    assert "Received Access-Accept" in radclient(aaa.auth_port, "status", STATUS)
    out = radclient(aaa.auth_port, "auth", access(world.active))
    assert "Received Access-Accept" in out, out
    assert "Framed-IP-Address" in out, out
    assert "Received Access-Accept" in radclient(aaa.auth_port, "status", STATUS)
