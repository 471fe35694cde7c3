"""`ztsim` as real processes of one site: `ztsim up`, a separate `ztsim serve api` on the
same data directory, and CLI commands; each waited for with a deadline, and its output
kept for the leak scan."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from support.leaks import LEAKS
from support.propagation_probes import ask
from support.propagation_world import PROBE_NAME, Site, free_port

START_SECONDS = 90.0  # a loaded machine (other suites running) starts slowly


def udp_port_bound(port: int) -> bool:
    """Whether a socket is bound to this UDP port, read from the kernel's table (binding
    it to find out could make the server's own bind fail)."""
    local = f":{port:04X}"
    with open("/proc/net/udp") as table:
        return any(line.split()[1].endswith(local) for line in table.readlines()[1:])


class Process:
    """One `ztsim` process; its output goes to a file (never a pipe that could fill) and,
    at the end, to the leak scan."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.log = log
        self._out = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ztsim", *args],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_SECONDS
        while not ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"ztsim {self.args[0]} ended: {self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{what} not ready in {START_SECONDS} s: {self.output()[-3000:]}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._out.close()
        LEAKS.add_text(f"ztsim {' '.join(self.args[:2])}", self.output())


def _api_ready(url: str, token: str) -> bool:
    try:
        r = httpx.get(
            f"{url}/api/v1/sims",
            params={"limit": 1},
            headers={"Authorization": f"Bearer {token}"},
            timeout=2,
        )
    except httpx.HTTPError:
        return False
    return r.status_code == 200


def start_up(site: Site) -> Process:
    """`ztsim up`: every role in one process; returns once the API, RADIUS and DNS serve."""
    process = Process(["up"], site.env, site.data_dir.parent / "up.log")

    def ready() -> bool:
        if not all(udp_port_bound(port) for _, port in (site.radius_auth, site.radius_acct)):
            return False
        if ask("127.0.0.1", site.dns, PROBE_NAME, timeout=0.2) is None:
            return False
        return _api_ready(site.api_url, site.token)

    try:
        process.wait_ready(ready, "ztsim up")
    except BaseException:
        process.stop()
        raise
    return process


def start_api(site: Site) -> tuple[Process, str]:
    """A separate `ztsim serve api` on the same data directory; (process, its URL)."""
    port = free_port(socket.SOCK_STREAM)
    env = {**site.env, "ZTSIM_API_PORT": str(port)}
    process = Process(["serve", "api"], env, site.data_dir.parent / "serve-api.log")
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_ready(lambda: _api_ready(url, site.token), "ztsim serve api")
    except BaseException:
        process.stop()
        raise
    return process, url


def run_cli(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "ztsim", *args],
        env=site.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    LEAKS.add_text(f"cli {' '.join(args[:2])}", done.stdout + done.stderr)
    return done
