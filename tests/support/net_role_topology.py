"""A gateway between a UE side and a site side, in three namespaces the test creates:
UE addresses on one veth pair, a site (and an address outside the site's networks, "the
internet") on another, plain routing through the gateway namespace (no tunnel). An HTTP
server in the site namespace answers on every address; `Echo` keeps one TCP flow
talking from a UE address, so a test can see when it stops carrying data."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support.netns_hosts import entered, ip, netns_unusable, new_tag, reap_stale

SITE, INTERNET = "172.31.77.2", "172.31.78.2"
SITE_PREFIX = "172.31.77.0/24"
GW_UE, GW_SITE, GW_INTERNET = "10.45.0.1", "172.31.77.1", "172.31.78.1"
HTTP_PORT, ECHO_PORT = 8080, 9000


def why_skip() -> str:
    reason = netns_unusable()
    for tool in ("nft", "conntrack", "curl"):
        if not reason and shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin") is None:
            reason = f"needs {tool}"
    return reason


@dataclass(frozen=True)
class Topology:
    ue: str
    gw: str
    site: str

    @property
    def nft_prefix(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.gw)

    def exec(self, ns: str, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", ns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def curl(self, source: str, host: str = SITE) -> str:
        done = self.exec(
            self.ue, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2",
            "--interface", source, f"http://{host}:{HTTP_PORT}/",
        )  # fmt: skip
        return done.stdout.strip() if done.returncode == 0 else f"failed ({done.returncode})"

    def connect(self, source: str, port: int = HTTP_PORT, timeout: float = 1.0) -> float:
        """Seconds a new TCP connection from `source` to the site took; OSError if refused."""
        with entered(self.ue):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with sock:
            sock.bind((source, 0))
            sock.settimeout(timeout)
            started = time.monotonic()
            sock.connect((SITE, port))
            return time.monotonic() - started


def _pair(a: str, a_if: str, b: str, b_if: str) -> None:
    ip("-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b)
    ip("-n", a, "link", "set", a_if, "up")
    ip("-n", b, "link", "set", b_if, "up")


@contextmanager
def topology(ue_addresses: tuple[str, ...], www: Path) -> Iterator[Topology]:
    reap_stale()
    tag = new_tag()
    t = Topology(f"{tag}-ue", f"{tag}-gw", f"{tag}-site")
    made: list[str] = []
    server: subprocess.Popen[bytes] | None = None
    try:
        for ns in (t.ue, t.gw, t.site):
            ip("netns", "add", ns)
            made.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        _pair(t.ue, "u0", t.gw, "g0")
        _pair(t.gw, "g1", t.site, "s0")
        for address in ue_addresses:
            ip("-n", t.ue, "addr", "add", f"{address}/24", "dev", "u0")
        ip("-n", t.ue, "route", "add", "default", "via", GW_UE)
        ip("-n", t.gw, "addr", "add", f"{GW_UE}/24", "dev", "g0")
        for address in (GW_SITE, GW_INTERNET):
            ip("-n", t.gw, "addr", "add", f"{address}/24", "dev", "g1")
        for address in (SITE, INTERNET):
            ip("-n", t.site, "addr", "add", f"{address}/24", "dev", "s0")
        ip("-n", t.site, "route", "add", "default", "via", GW_SITE)
        assert t.exec(t.gw, "sysctl", "-qw", "net.ipv4.ip_forward=1").returncode == 0
        (www / "index.html").write_text("private\n")
        server = subprocess.Popen(
            ["ip", "netns", "exec", t.site, sys.executable, "-m", "http.server", str(HTTP_PORT),
             "--bind", "0.0.0.0", "--directory", str(www)],  # noqa: S104 (the site namespace's only)
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while (
            t.exec(t.gw, "curl", "-s", "--max-time", "1", f"http://{SITE}:{HTTP_PORT}/").stdout
            != "private\n"
        ):
            assert time.monotonic() < deadline, "the site's HTTP server did not come up"
            time.sleep(0.05)
        yield t
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        for ns in reversed(made):
            ip("netns", "del", ns, check=False)


class Echo:
    """A TCP echo server in the site namespace, and one client flow from `source`."""

    def __init__(self, t: Topology, source: str) -> None:
        with entered(t.site):
            self.listener = socket.create_server((SITE, ECHO_PORT))
        threading.Thread(target=self._serve, daemon=True).start()
        with entered(t.ue):
            self.client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.client.bind((source, 0))
        self.client.settimeout(2)
        self.client.connect((SITE, ECHO_PORT))
        self.client.settimeout(0.05)
        self.echoes: list[float] = []
        self.running = True
        self.thread = threading.Thread(target=self._talk, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, contextlib.suppress(ConnectionResetError):
            # A revoked flow's echo is refused by the gateway with a TCP reset.
            while data := conn.recv(4096):
                conn.sendall(data)

    def _talk(self) -> None:
        deadline = time.monotonic() + 60  # bounded, whatever the test does
        while self.running and time.monotonic() < deadline:
            try:
                self.client.sendall(b"x")
                if self.client.recv(4096):
                    self.echoes.append(time.monotonic())
            except TimeoutError:
                pass
            except OSError:
                time.sleep(0.05)  # refused by the gateway's reject: keep trying, as an app would
            time.sleep(0.01)

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=5)
        self.client.close()
        self.listener.close()
