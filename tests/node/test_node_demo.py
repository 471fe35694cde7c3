"""`ztsim demo --once` as a new user runs it, in a fresh directory, on free ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from support.leaks import LEAKS


def _free(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_once_tells_the_story_the_devices_lived(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ZTSIM_API_PORT": str(_free(socket.SOCK_STREAM)),
        "ZTSIM_RADIUS_AUTH_PORT": str(_free(socket.SOCK_DGRAM)),
        "ZTSIM_RADIUS_ACCT_PORT": str(_free(socket.SOCK_DGRAM)),
        "ZTSIM_DNS_PORT": str(_free(socket.SOCK_DGRAM)),
        "COLUMNS": "120",
    }
    done = subprocess.run(
        [sys.executable, "-m", "ztsim", "demo", "--once", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    LEAKS.add_text("cli demo", done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    platform, devices = figures["platform"], figures["devices"]

    # The scenario's expected outcomes: 20 phones and 9 meters attach; the cloned SIM
    # and the stolen meter SIM are refused, each as the risk it is.
    assert devices["attached"] == 29
    assert len(devices["refused"]) == 2
    assert platform["attaches_refused"] == {"clone_suspected": 1, "imei_mismatch": 1}
    assert platform["risk"] == {"risk.clone": 1, "risk.device_swap": 1}
    # One phished employee follows one phishing link; the compromised meter beacons
    # on every other query (6 per device: 3 beacons).
    assert platform["blocks_by_category"] == {"phishing": 1, "command-and-control": 3}
    assert devices["no_answer"] == 0

    # What the platform recorded agrees with what the devices saw.
    assert platform["attaches_accepted"] == devices["attached"]
    assert platform["sessions_started"] == devices["attached"]
    assert platform["dns_queries"] == devices["answered"] == devices["queries"]
    assert (
        platform["dns_blocked"]
        == devices["blocked"]
        == sum(platform["blocks_by_category"].values())
    )
    assert sorted(platform["blocks_by_identity"].values()) == sorted(
        devices["blocked_by_device"].values()
    )
    # The cloned SIM's genuine session was cut within a second of the API call.
    assert platform["disconnects"] == 1
    assert platform["revocation_ms"] is not None
    assert platform["revocation_ms"] < 1000

    assert "ztsim demo" in done.stdout
    pack = tmp_path / "ztsim-demo" / "onboarding-pack.zip"
    assert pack.stat().st_mode & 0o777 == 0o600
    # Run again: the demo directory is recreated, not refused.
    again = subprocess.run(
        [sys.executable, "-m", "ztsim", "demo", "--once"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-3000:]


def test_demo_never_wipes_a_directory_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "ztsim-demo"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    done = subprocess.run(
        [sys.executable, "-m", "ztsim", "demo", "--once"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "not made by `ztsim demo`" in done.stderr
    assert (precious / "keep.txt").read_text() == "mine"
