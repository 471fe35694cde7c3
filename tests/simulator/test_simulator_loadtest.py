"""`ztsim simulate` against a real `ztsim up`, both as processes, as an operator runs them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2


def _free(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_simulate_drives_a_running_platform_without_errors(tmp_path: Path) -> None:
    api_port = _free(socket.SOCK_STREAM)
    env = {
        **os.environ,
        "ZTSIM_DATA_DIR": str(tmp_path / "data"),
        "ZTSIM_API_PORT": str(api_port),
        "ZTSIM_RADIUS_AUTH_PORT": str(_free(socket.SOCK_DGRAM)),
        "ZTSIM_RADIUS_ACCT_PORT": str(_free(socket.SOCK_DGRAM)),
        "ZTSIM_DNS_PORT": str(_free(socket.SOCK_DGRAM)),
        "ZTSIM_DNS_RELOAD_INTERVAL": "1",
    }
    with subprocess.Popen(
        [sys.executable, "-m", "ztsim", "up"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as up:
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    httpx2.get(f"http://127.0.0.1:{api_port}/openapi.json")
                    break
                except httpx2.TransportError:
                    time.sleep(0.2)
            done = subprocess.run(
                [sys.executable, "-m", "ztsim", "simulate", "--devices", "40", "--duration", "12"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            up.terminate()
            up.wait(timeout=15)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["errors"] == 0
    assert figures["attached"] == 40
    assert figures["queries"] == 40 * 4
    assert figures["rcodes"] == {"0": 160}  # every name answered by the load org's override
    assert figures["attaches_per_s"] > 0
    assert figures["dns_queries_per_s"] > 0
