"""The AAA role's collector on a running service: radclient's requests on both ports,
their responses by code, drops by reason, commits, the feed; rendered and read back."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ztsim.metrics.exposition import render
from ztsim.radius.serve.metrics import radius_collector
from ztsim.sealing import Sealer

from support.prometheus_text import Scrape, parse
from support.radius_world import (
    RADCLIENT,
    RunningAaa,
    access,
    accounting,
    build_world,
    radclient,
)

pytestmark = pytest.mark.skipif(
    RADCLIENT is None, reason="needs radclient (Debian package freeradius-utils)"
)


def _scrape(aaa: RunningAaa) -> Scrape:
    return parse(render(radius_collector(aaa.service)()).decode())


@pytest.mark.parametrize("journaled", [False, True], ids=["after-commit", "journaled"])
def test_requests_responses_drops_and_commits(
    sqlite_engine: Engine, sealer: Sealer, tmp_path: Path, journaled: bool
) -> None:
    world = build_world(sqlite_engine, sealer)
    aaa = RunningAaa(sqlite_engine, sealer, journal_dir=tmp_path / "j" if journaled else None)
    try:
        before = _scrape(aaa)
        assert before.value("ztsim_radius_requests_total", port="auth") == 0
        assert "Access-Accept" in radclient(aaa.auth_port, "auth", access(world.active))
        assert "Access-Reject" in radclient(aaa.auth_port, "auth", access(world.suspended))
        start = accounting("Start", "m-1", world.active)
        assert "Accounting-Response" in radclient(aaa.acct_port, "acct", start)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(b"\x01", ("127.0.0.1", aaa.auth_port))
        wrong = radclient(aaa.auth_port, "auth", access(world.active), secret="not-the-secret")
        assert "Access-Accept" not in wrong
        aaa.flush()
        after = _scrape(aaa)
    finally:
        aaa.close()
    assert after.value("ztsim_radius_requests_total", port="auth") >= 4
    assert after.value("ztsim_radius_requests_total", port="acct") == 1
    assert after.value("ztsim_radius_responses_total", code="access_accept") == 1
    assert after.value("ztsim_radius_responses_total", code="access_reject") == 1
    assert after.value("ztsim_radius_responses_total", code="accounting_response") == 1
    assert after.value("ztsim_radius_dropped_total", reason="malformed") == 1
    assert after.value("ztsim_radius_dropped_total", reason="bad_authenticator") >= 1
    assert after.value("ztsim_radius_request_duration_seconds_count", port="acct") == 1
    assert after.value("ztsim_radius_commits_total", result="ok") >= 1
    assert after.value("ztsim_radius_commits_total", result="failed") == 0
    assert after.value("ztsim_radius_commit_duration_seconds_count") >= 1
    assert after.value("ztsim_radius_accounting_awaiting_commit") == 0
    assert after.value("ztsim_radius_accounting_journal_backlog_bytes") == 0
    assert after.value("ztsim_radius_disconnects_total", result="ack") == 0
    assert after.value("ztsim_feed_connected", role="radius") == 1
    assert after.value("ztsim_feed_position", role="radius") == aaa.service.applied_seq
    labels = {name for (_, series) in after.values for name, _ in series}
    assert labels <= {"port", "code", "reason", "result", "role", "le"}
