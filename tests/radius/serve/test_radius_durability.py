"""Nothing acknowledged is lost (RFC 2866 §2: accounting is answered once recorded).

radclient bursts of Accounting-Start and -Stop at `ztsim serve radius`, which is killed
(SIGKILL) or stopped (SIGTERM) at a random moment mid-burst: every request that got a
response is in the session table and in the events. And a PostgreSQL outage (a TCP
relay in front of the server, stopped and started again): accounting gets no answer
meanwhile, the gateway's retransmissions are answered once it is back, and nothing
answered is lost, nor any access decision.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from ztsim.cli.main import app
from ztsim.db.engine import make_engine
from ztsim.db.schema import metadata
from ztsim.node import platform as node
from ztsim.radius import Code, Packet, SharedSecret, sign_request
from ztsim.radius.dictionary import make_attribute
from ztsim.sealing import Sealer

from support.leaks import LEAKS
from support.radius_world import (
    RADCLIENT,
    SECRET,
    RunningAaa,
    TcpProxy,
    World,
    access,
    acct_burst,
    answered,
    build_world,
    burst_command,
    free_udp_port,
    radclient,
    udp_port_bound,
)

pytestmark = pytest.mark.skipif(
    RADCLIENT is None, reason="needs radclient (Debian package freeradius-utils)"
)

SESSIONS = 1500  # a Start and a Stop each: 3,000 requests, a few seconds at most


def _installed(tmp_path: Path) -> tuple[dict[str, str], World]:
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(
        app, ["init", "--slug", "acme"], env={"ZTSIM_DATA_DIR": str(data_dir)}
    )
    assert result.exit_code == 0, result.output
    for token in result.output.split():
        if token.startswith("ztsim_"):
            LEAKS.add_secret(token)
    platform = node.build(node.settings_from(None, data_dir=data_dir))
    world = build_world(platform.engine, platform.sealer)
    platform.engine.dispose()
    env = {
        **os.environ,
        "ZTSIM_DATA_DIR": str(data_dir),
        "ZTSIM_RADIUS_AUTH_PORT": str(free_udp_port()),
        "ZTSIM_RADIUS_ACCT_PORT": str(free_udp_port()),
    }
    return env, world


def _serve(env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ztsim", "serve", "radius"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    port = int(env["ZTSIM_RADIUS_ACCT_PORT"])
    deadline = time.monotonic() + 30
    while not udp_port_bound(port):
        assert time.monotonic() < deadline, "the server never bound its port"
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.01)
    # Bound before its snapshot is loaded: wait until it answers.
    assert "Received Access-Reject" in radclient(
        int(env["ZTSIM_RADIUS_AUTH_PORT"]), "auth", access("001019999999999"), tries=10
    )
    return proc


def _follow(stream: IO[str], lines: list[str], responses: threading.Semaphore) -> None:
    for line in stream:
        lines.append(line)
        if line.startswith("Received Accounting-Response"):
            responses.release()


def _burst_then(
    tmp_path: Path, env: dict[str, str], world: World, server: subprocess.Popen[str], sig: int
) -> set[int]:
    """A burst at the server, `sig` sent to it after a random number of responses; the
    numbers of the requests that got a response."""
    requests = tmp_path / "burst.txt"
    requests.write_text(acct_burst(world.active, SESSIONS))
    port = int(env["ZTSIM_RADIUS_ACCT_PORT"])
    command = burst_command(port, str(requests), in_flight=100, tries=1, timeout=3)
    client = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert client.stdout is not None
    lines: list[str] = []
    responses = threading.Semaphore(0)
    follower = threading.Thread(target=_follow, args=(client.stdout, lines, responses))
    follower.start()
    try:
        for _ in range(random.randint(200, 2 * SESSIONS - 500)):
            assert responses.acquire(timeout=30), "the burst stalled"
        server.send_signal(sig)
        server.wait(timeout=30)
        # What the server sent before it ended reaches radclient; the rest would only
        # time out, one by one.
        time.sleep(1.0)
        client.terminate()
        client.wait(timeout=10)
    finally:
        if client.poll() is None:
            client.kill()
        follower.join(timeout=10)
        client.stdout.close()
    output = "".join(lines)
    got = answered(output)
    # Mid-burst: some requests went unanswered.
    assert 0 < len(got) < 2 * SESSIONS, output[-2000:]
    return got


def _durable(engine: Engine, org_id: str) -> tuple[set[str], set[str], set[str], set[str]]:
    """Sessions known, sessions stopped, Start events, Stop events (session ids)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select acct_session_id, stopped_at from radius_sessions where org_id = :o"),
            {"o": org_id},
        ).all()
        events = conn.execute(
            sa.text("select kind, payload from events where kind like 'radius.session_%'")
        ).all()
    known = {r[0] for r in rows}
    stopped = {r[0] for r in rows if r[1] is not None}

    def ids(kind: str) -> set[str]:
        return {
            (p if isinstance(p, dict) else json.loads(p))["acct_session_id"]
            for k, p in events
            if k == kind
        }

    return known, stopped, ids("radius.session_started"), ids("radius.session_stopped")


def _recorded_twice(engine: Engine) -> list[tuple[str, str]]:
    """Session events recorded more than once for one session (a replay of what was
    already committed would make them: a Start of a stopped session starts it again)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select kind, payload from events where kind like 'radius.session_%'")
        ).all()
    seen = Counter(
        (kind, (p if isinstance(p, dict) else json.loads(p))["acct_session_id"]) for kind, p in rows
    )
    return sorted(key for key, n in seen.items() if n > 1)


def _settled(tmp_path: Path, env: dict[str, str], world: World, sessions: int = 100) -> None:
    """Sessions started and stopped, all answered and committed, before the burst."""
    requests = tmp_path / "settled.txt"
    requests.write_text(acct_burst(world.active, sessions, prefix="c"))
    port = int(env["ZTSIM_RADIUS_ACCT_PORT"])
    command = burst_command(port, str(requests), in_flight=20, tries=3, timeout=2)
    output = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
    assert answered(output) == set(range(2 * sessions)), output[-2000:]
    engine = _sqlite(tmp_path)
    try:
        deadline = time.monotonic() + 30
        while len(_durable(engine, world.org_id)[1]) < sessions:
            assert time.monotonic() < deadline, "the settled sessions were never committed"
            time.sleep(0.05)
    finally:
        engine.dispose()


def _check(
    engine: Engine, org_id: str, got: set[int], *, prefix: str = "b", sessions: int = SESSIONS
) -> None:
    known, stopped, started_events, stopped_events = _durable(engine, org_id)
    starts = {f"{prefix}-{n}" for n in got if n < sessions}
    stops = {f"{prefix}-{n - sessions}" for n in got if n >= sessions}
    assert starts <= known, f"{len(starts - known)} answered Starts lost"
    assert starts <= started_events, f"{len(starts - started_events)} Start events lost"
    assert stops <= stopped, f"{len(stops - stopped)} answered Stops lost"
    assert stops <= stopped_events, f"{len(stops - stopped_events)} Stop events lost"


def _sqlite(tmp_path: Path) -> Engine:
    return sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'ztsim.db'}")


def test_kill_9_mid_burst_loses_no_answered_accounting(tmp_path: Path) -> None:
    env, world = _installed(tmp_path)
    server = _serve(env)
    try:
        _settled(tmp_path, env, world)
        got = _burst_then(tmp_path, env, world, server, signal.SIGKILL)
        assert server.returncode == -signal.SIGKILL
    finally:
        if server.poll() is None:
            server.kill()
    LEAKS.add_text("ztsim serve radius", server.communicate(timeout=10)[0])
    # It starts again on what it left, and stops cleanly.
    again = _serve(env)
    again.send_signal(signal.SIGTERM)
    output = again.communicate(timeout=30)[0]
    LEAKS.add_text("ztsim serve radius", output)
    assert again.returncode == 0, output
    engine = _sqlite(tmp_path)
    try:
        _check(engine, world.org_id, got)
        # The restart replayed its journal from the mark the commits left, not before.
        assert _recorded_twice(engine) == []
    finally:
        engine.dispose()


def test_sigterm_mid_burst_answers_what_it_recorded_and_loses_nothing(tmp_path: Path) -> None:
    env, world = _installed(tmp_path)
    server = _serve(env)
    try:
        got = _burst_then(tmp_path, env, world, server, signal.SIGTERM)
        output = server.communicate(timeout=30)[0]
    finally:
        if server.poll() is None:
            server.kill()
    LEAKS.add_text("ztsim serve radius", output)
    assert server.returncode == 0, output
    assert "Traceback" not in output
    engine = _sqlite(tmp_path)
    try:
        _check(engine, world.org_id, got)
        # The stop commits what was recorded and sends those responses before exiting:
        # every session it wrote was answered.
        known, stopped, _, _ = _durable(engine, world.org_id)
        assert known == {f"b-{n}" for n in got if n < SESSIONS}
        assert stopped == {f"b-{n - SESSIONS}" for n in got if n >= SESSIONS}
    finally:
        engine.dispose()


# -- a PostgreSQL outage ------------------------------------------------------------------


@pytest.fixture
def postgres(pg_schema: tuple[str, str]) -> Iterator[tuple[Engine, TcpProxy, Engine]]:
    """The test schema directly, a relay in front of the server, and an engine through it."""
    url, schema = pg_schema
    direct = make_engine(url, schema=schema)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with direct.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    parsed = make_url(url)
    proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
    proxy.start()
    relayed = make_engine(
        parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        schema=schema,
    )
    yield direct, proxy, relayed
    relayed.dispose()
    proxy.stop()
    LEAKS.add_events(direct)
    direct.dispose()


def _acct_request(ident: int, session_id: str, imsi: str) -> bytes:
    request = Packet(
        Code.ACCOUNTING_REQUEST,
        ident,
        os.urandom(16),
        (
            make_attribute("Acct-Status-Type", 1),
            make_attribute("Acct-Session-Id", session_id),
            make_attribute("User-Name", imsi),
            make_attribute("3GPP-IMSI", imsi),
        ),
    )
    return sign_request(request, SharedSecret(SECRET)).encode()


def _access_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.text("select count(*) from events where kind = 'radius.access'")).one()[
                0
            ]
        )


@pytest.mark.postgres
def test_database_outage_leaves_accounting_unanswered_then_loses_nothing(
    postgres: tuple[Engine, TcpProxy, Engine], sealer: Sealer, tmp_path: Path
) -> None:
    direct, proxy, relayed = postgres
    world = build_world(direct, sealer)
    aaa = RunningAaa(relayed, sealer, flush_seconds=0.1)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gateway:
            gateway.settimeout(5)
            probe = _acct_request(1, "before", world.active)
            gateway.sendto(probe, ("127.0.0.1", aaa.acct_port))
            assert Packet.decode(gateway.recv(4096)).code is Code.ACCOUNTING_RESPONSE

            proxy.stop()  # the database is gone, open connections cut
            during = _acct_request(2, "during", world.active)
            gateway.sendto(during, ("127.0.0.1", aaa.acct_port))
            gateway.settimeout(1.5)
            with pytest.raises(TimeoutError):
                gateway.recv(4096)
            # Access-Requests are answered from memory meanwhile.
            for _ in range(3):
                out = radclient(aaa.auth_port, "auth", access(world.active))
                assert "Received Access-Accept" in out, out
            # A burst, with the gateway's retransmissions, spans the end of the outage.
            requests = tmp_path / "outage.txt"
            requests.write_text(acct_burst(world.active, 200, prefix="o"))
            command = burst_command(aaa.acct_port, str(requests), in_flight=50, tries=30, timeout=1)
            client = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            time.sleep(2.0)
            assert aaa.service.core is not None
            assert aaa.service.core.awaiting  # recorded, waiting for the database
            # A retransmission during the outage is not answered either.
            gateway.sendto(during, ("127.0.0.1", aaa.acct_port))
            with pytest.raises(TimeoutError):
                gateway.recv(4096)
            proxy.start()
            gateway.settimeout(15)
            reply = Packet.decode(gateway.recv(4096))
            assert reply.code is Code.ACCOUNTING_RESPONSE
            assert reply.identifier == 2
            output = client.communicate(timeout=90)[0]
            got = answered(output)
            assert got == set(range(400)), output[-2000:]
        aaa.flush()
        known, _, started, _ = _durable(direct, world.org_id)
        assert {"before", "during"} <= known
        assert {"before", "during"} <= started
        _check(direct, world.org_id, got, prefix="o", sessions=200)
        # The decisions made during the outage were written once it ended.
        assert _access_count(direct) == 3
        assert aaa.service.writer.dropped_access == 0
    finally:
        aaa.close()
