"""The roles' metrics ports: the listen setting, a port that cannot be bound, and
`ztsim serve radius` as a real process scraped with httpx after a radclient request."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ztsim.cli.main import app
from ztsim.errors import InvalidInput
from ztsim.identity import repository as identities
from ztsim.metrics.registry import Kind, Spec
from ztsim.node import platform as node
from ztsim.node.metrics import parse_listen, serve_metrics
from ztsim.radius.store import registry

from support.leaks import LEAKS
from support.prometheus_text import Scrape, parse
from support.radius_world import RADCLIENT, SECRET, access, free_udp_port, radclient

PROBE = Spec("ztsim_test_probe", "A probe.", Kind.GAUGE)
UNKNOWN_IMSI = "001019999999999"


def _free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("", None),
        ("  ", None),
        ("127.0.0.1:9812", ("127.0.0.1", 9812)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:9813", ("::1", 9813)),
    ],
)
def test_listen_addresses(text: str, where: tuple[str, int] | None) -> None:
    assert parse_listen(text) == where


@pytest.mark.parametrize("text", ["9812", "127.0.0.1", "::1:9812", ":9812", "h:port", "h:70000"])
def test_bad_listen_addresses_stop_the_start(text: str) -> None:
    with pytest.raises(InvalidInput, match="metrics listen address"):
        parse_listen(text)


def test_a_port_taken_is_logged_and_the_role_serves_without_metrics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = int(taken.getsockname()[1])
            listener = await serve_metrics(("127.0.0.1", port), lambda: [], "RADIUS")
            assert listener is None
        served = await serve_metrics(("127.0.0.1", 0), lambda: [PROBE.family([((), 3)])], "X")
        assert served is not None
        try:
            async with httpx.AsyncClient() as client:
                r = await client.get(f"http://127.0.0.1:{served.port}/metrics")
            assert parse(r.text).value("ztsim_test_probe") == 3
        finally:
            await served.stop()

    with caplog.at_level(logging.ERROR, logger="ztsim.node.metrics"):
        asyncio.run(main())
    assert "RADIUS metrics not served" in caplog.text


def _installed(tmp_path: Path) -> dict[str, str]:
    """An org with a gateway on loopback; the environment to serve it."""
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
            now=datetime.now(UTC),
        )
    platform.engine.dispose()
    return {
        **os.environ,
        "ZTSIM_DATA_DIR": str(data_dir),
        "ZTSIM_RADIUS_AUTH_PORT": str(free_udp_port()),
        "ZTSIM_RADIUS_ACCT_PORT": str(free_udp_port()),
        "ZTSIM_RADIUS_METRICS_LISTEN": f"127.0.0.1:{_free_tcp_port()}",
    }


def _scrape(url: str) -> Scrape | None:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    assert response.status_code == 200
    return parse(response.text)


@pytest.mark.skipif(RADCLIENT is None, reason="needs radclient (Debian package freeradius-utils)")
def test_serve_radius_counts_a_radclient_request_on_its_metrics_port(tmp_path: Path) -> None:
    env = _installed(tmp_path)
    auth_port = int(env["ZTSIM_RADIUS_AUTH_PORT"])
    url = f"http://{env['ZTSIM_RADIUS_METRICS_LISTEN']}/metrics"
    with subprocess.Popen(
        [sys.executable, "-m", "ztsim", "serve", "radius"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        try:
            deadline = time.monotonic() + 60
            while (before := _scrape(url)) is None:
                assert proc.poll() is None, "ztsim serve radius ended"
                assert time.monotonic() < deadline, "the metrics port never answered"
                time.sleep(0.1)
            assert before.value("ztsim_radius_requests_total", port="auth") == 0
            out = radclient(auth_port, "auth", access(UNKNOWN_IMSI), tries=5)
            assert "Received Access-Reject" in out, out
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as garbage:
                garbage.sendto(b"\x01\x02", ("127.0.0.1", auth_port))  # malformed
            deadline = time.monotonic() + 30
            while True:
                after = _scrape(url)
                assert after is not None
                if after.get("ztsim_radius_dropped_total", reason="malformed") >= 1:
                    break
                assert time.monotonic() < deadline, "the malformed datagram was not counted"
                time.sleep(0.1)
            assert after.value("ztsim_radius_requests_total", port="auth") >= 2
            assert after.value("ztsim_radius_responses_total", code="access_reject") >= 1
            assert after.value("ztsim_radius_request_duration_seconds_count", port="auth") >= 2
            assert after.value("ztsim_feed_connected", role="radius") == 1
            assert 0 <= after.value("ztsim_feed_lag_seconds", role="radius") < 30
            text = httpx.get(url, timeout=2).text
            assert UNKNOWN_IMSI not in text
            assert SECRET not in text
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.stdout is not None
        LEAKS.add_text("ztsim serve radius", proc.stdout.read())
