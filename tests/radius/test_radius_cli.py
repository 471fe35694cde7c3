"""`ztsim serve radius` as a real process: it answers radclient and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ztsim.cli.main import app
from ztsim.identity import repository as identities
from ztsim.node import platform as node
from ztsim.radius.store import registry

from support.leaks import LEAKS
from support.radius_world import RADCLIENT, SECRET, access, radclient

pytestmark = pytest.mark.skipif(
    RADCLIENT is None, reason="needs radclient (Debian package freeradius-utils)"
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_radius_answers_and_stops(tmp_path: Path) -> None:
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
    auth_port, acct_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "ZTSIM_DATA_DIR": str(data_dir),
        "ZTSIM_RADIUS_AUTH_PORT": str(auth_port),
        "ZTSIM_RADIUS_ACCT_PORT": str(acct_port),
    }
    with subprocess.Popen(
        [sys.executable, "-m", "ztsim", "serve", "radius"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        try:
            # radclient retries until the server has bound its port.
            out = radclient(auth_port, "auth", access("001019999999999"), tries=10)
            assert "Received Access-Reject" in out, out
            assert 'Reply-Message = "unknown subscriber"' in out
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.stdout is not None
        LEAKS.add_text("ztsim serve radius", proc.stdout.read())
