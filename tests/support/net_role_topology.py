"""A gateway between a UE side and a site side, in three namespaces the test creates:
UE addresses on one veth pair, a site (and an address outside the site's networks, "the
internet") on another, plain routing through the gateway namespace (no tunnel). An HTTP
server in the site namespace answers on every address; `Echo` keeps one TCP flow
talking from a UE address, so a test can see when it stops carrying data."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support.net_flows import EchoFlow, connect_time, curl_status, run_in, serve_one_echo
from support.netns_hosts import ip, netns_unusable, new_tag, reap_stale

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
        return run_in(ns, *argv, timeout=timeout)

    def curl(self, source: str, host: str = SITE) -> str:
        return curl_status(self.ue, source, f"http://{host}:{HTTP_PORT}/")

    def connect(self, source: str, port: int = HTTP_PORT, timeout: float = 1.0) -> float:
        """Seconds a new TCP connection from `source` to the site took; OSError if refused."""
        return connect_time(self.ue, source, (SITE, port), timeout)


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


class Echo(EchoFlow):
    """A TCP echo server in the site namespace, and one client flow from `source`."""

    def __init__(self, t: Topology, source: str) -> None:
        self.listener = serve_one_echo(t.site, (SITE, ECHO_PORT))
        super().__init__(t.ue, source, (SITE, ECHO_PORT))

    def close(self) -> None:
        super().close()
        self.listener.close()
