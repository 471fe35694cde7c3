"""`ztsim serve radius` as a real process: it answers radclient and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from ztsim.cli.main import app
from ztsim.identity import repository as identities
from ztsim.node import platform as node
from ztsim.radius import Code, Packet, SharedSecret, sign_request
from ztsim.radius.dictionary import make_attribute
from ztsim.radius.store import registry

from support.leaks import LEAKS
from support.radius_world import RADCLIENT, SECRET, access, free_udp_port, radclient, udp_port_bound

pytestmark = pytest.mark.skipif(
    RADCLIENT is None, reason="needs radclient (Debian package freeradius-utils)"
)


def _installed(tmp_path: Path) -> dict[str, str]:
    """An org with a gateway on loopback and a pool; the environment to serve it."""
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(
        app, ["init", "--slug", "acme"], env={"ZTSIM_DATA_DIR": str(data_dir)}
    )
    assert result.exit_code == 0, result.output
    for token in result.output.split():
        if token.startswith("ztsim_"):
            LEAKS.add_secret(token)
    platform = node.build(node.settings_from(None, data_dir=data_dir))
    with platform.engine.begin() as conn:
        org = identities.find_org(conn, "acme")
        now = datetime.now(UTC)
        registry.create_gateway(
            conn,
            platform.sealer,
            org.id,
            name="pgw",
            address="127.0.0.1",
            secret=SECRET,
            apns=["corp.apn"],
            require_message_authenticator=True,
            coa_port=3799,
            now=now,
        )
        registry.create_pool(conn, org.id, cidr="10.64.0.0/24", static_cidr=None, now=now)
    platform.engine.dispose()
    return {
        **os.environ,
        "ZTSIM_DATA_DIR": str(data_dir),
        "ZTSIM_RADIUS_AUTH_PORT": str(free_udp_port()),
        "ZTSIM_RADIUS_ACCT_PORT": str(free_udp_port()),
    }


def test_serve_radius_answers_and_stops(tmp_path: Path) -> None:
    env = _installed(tmp_path)
    auth_port = int(env["ZTSIM_RADIUS_AUTH_PORT"])
    with subprocess.Popen(
        [sys.executable, "-m", "ztsim", "serve", "radius"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        try:
            # radclient retries until the server has bound its port (slow on a loaded machine).
            out = radclient(auth_port, "auth", access("001019999999999"), tries=25)
            assert "Received Access-Reject" in out, out
            assert 'Reply-Message = "unknown subscriber"' in out
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.stdout is not None
        LEAKS.add_text("ztsim serve radius", proc.stdout.read())


def _access_request(ident: int) -> bytes:
    request = Packet(
        Code.ACCESS_REQUEST,
        ident,
        os.urandom(16),
        (
            make_attribute("User-Name", "001019999999999"),
            make_attribute("3GPP-IMSI", "001019999999999"),
            make_attribute("Called-Station-Id", "corp.apn"),
        ),
    )
    return sign_request(request, SharedSecret(SECRET), add_message_authenticator=True).encode()


def test_sigterm_as_soon_as_bound_stops_cleanly_and_writes_what_was_answered(
    tmp_path: Path,
) -> None:
    """The stop handlers are in place before the ports are bound: a SIGTERM right after
    the bind (while the role is still starting) is an orderly stop, and a decision
    already answered is in the event log."""
    env = _installed(tmp_path)
    auth_port = int(env["ZTSIM_RADIUS_AUTH_PORT"])
    with subprocess.Popen(
        [sys.executable, "-m", "ztsim", "serve", "radius"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        try:
            deadline = time.monotonic() + 30
            while not udp_port_bound(auth_port):
                assert time.monotonic() < deadline, "the server never bound its port"
                assert proc.poll() is None
                time.sleep(0.001)
            answered = False
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.settimeout(0.2)
                for ident in range(20):
                    client.sendto(_access_request(ident), ("127.0.0.1", auth_port))
                    try:
                        answered = client.recv(4096)[0] == Code.ACCESS_REJECT
                        break
                    except TimeoutError:
                        continue
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.stdout is not None
        output = proc.stdout.read()
        LEAKS.add_text("ztsim serve radius", output)
    assert code == 0, output
    assert "Traceback" not in output
    assert answered
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'ztsim.db'}")
    try:
        with engine.connect() as conn:
            reasons = (
                conn.execute(sa.text("select reason from events where kind = 'radius.access'"))
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    assert reasons == ["unknown_imsi"]
