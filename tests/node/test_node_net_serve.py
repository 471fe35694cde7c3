"""The net role in a process: settings to the role's, `ztsim up`'s choice to start it, and
`ztsim serve net` run for real in a network namespace the test makes (root: CI is)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ztsim.cli.main import app
from ztsim.node import platform as node
from ztsim.node.net_serve import net_settings, start_beside
from ztsim.settings import Settings

from support.leaks import LEAKS
from support.netns_hosts import ip, netns_unusable, new_tag


def test_settings_become_the_roles() -> None:
    settings = Settings(
        net_enabled=True, net_netns="gw1", net_underlay="198.18.0.1", net_reject=False
    )
    role = net_settings(settings)
    assert role.enabled
    assert role.nft_prefix == ("ip", "netns", "exec", "gw1")
    assert role.underlay == "198.18.0.1"
    assert (role.reject, role.audit) == (False, True)
    assert net_settings(Settings()).nft_prefix == ()
    assert not net_settings(Settings()).enabled
    assert net_settings(Settings(), enabled=True).enabled


def test_up_starts_the_role_only_when_enabled_and_root(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    off = node.build(Settings(data_dir=tmp_path / "a"), create_key=True)
    assert start_beside(off, euid=0) is None
    wanted = node.build(Settings(data_dir=tmp_path / "b", net_enabled=True), create_key=True)
    with caplog.at_level(logging.WARNING, logger="ztsim.node.net"):
        assert start_beside(wanted, euid=1000) is None
    assert "needs root" in caplog.text


def _init(data_dir: Path) -> None:
    result = CliRunner().invoke(
        app, ["init", "--slug", "acme"], env={"ZTSIM_DATA_DIR": str(data_dir)}
    )
    assert result.exit_code == 0, result.output
    for token in result.output.split():
        if token.startswith("ztsim_"):
            LEAKS.add_secret(token)


@pytest.mark.skipif(bool(netns_unusable()), reason=netns_unusable() or "ip netns works")
def test_serve_net_applies_its_table_in_the_namespace_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    _init(data_dir)
    ns = f"{new_tag()}-gw"
    ip("netns", "add", ns)
    try:
        env = os.environ | {"ZTSIM_DATA_DIR": str(data_dir)}
        with subprocess.Popen(
            [sys.executable, "-m", "ztsim", "serve", "net", "--netns", ns],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as proc:
            try:
                assert proc.stdout is not None
                line = proc.stdout.readline()  # printed once the table is applied
                assert f"table inet ztsim applied in namespace {ns}" in line, line
                listed = subprocess.run(
                    ["ip", "netns", "exec", ns, "nft", "-j", "list", "table", "inet", "ztsim"],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                chains = {
                    item["chain"]["name"]
                    for item in json.loads(listed.stdout)["nftables"]
                    if "chain" in item
                }
                assert "forward" in chains
                started = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=30) == 0
                assert time.monotonic() - started < 30
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    finally:
        ip("netns", "del", ns, check=False)


def test_serve_net_refuses_an_underlay_that_is_not_an_address(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _init(data_dir)
    done = subprocess.run(
        [sys.executable, "-m", "ztsim", "serve", "net", "--underlay", "not-an-address"],
        env=os.environ | {"ZTSIM_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "underlay" in (done.stdout + done.stderr)
    assert "Traceback" not in done.stderr
