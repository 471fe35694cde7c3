"""The namespaces bench/net.py measures in (a UE, two gateways side by side, a site) and
the traffic it sends through them (iperf3, a connect, a paced TCP stream).

Two gateways so that ztsim's table and plain Linux forwarding are measured in the same
run, alternately, on the same kind of path: TAG-gwz holds table `inet ztsim`, TAG-gwp
holds no ruleset at all (no netfilter hook registered in its namespace, so no conntrack
either: what a router does without ztsim). Each path has its own addresses, so the UE
picks a gateway by the destination alone:

    UE 100.64.0.2/14 --u0--g0-- TAG-gwz --g1--s0-- 172.31.77.2/24 site
    UE 100.68.0.2/24 --u1--g0-- TAG-gwp --g1--s1-- 172.31.78.2/24 site

100.64.0.0/10 is the shared address space of RFC 6598, where carriers put subscribers:
the UE's ztsim address lies in the /14 that the 100,000 synthetic subjects come from.
Every name carries `tests/support/netns_hosts.new_tag()`, whose process id lets a later
run reap what a killed one left (`reap_stale`); `close` removes everything, and runs on
any failure half-way through `open`.

Sockets are made in a namespace by the thread that enters it (`entered`) and used from
any thread afterwards; every wait is bounded by a socket timeout and a deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the namespace helpers are the tests' own

from support.netns_hosts import entered, ip, netns_unusable, new_tag, reap_stale  # noqa: E402

UE_ZTSIM, GW_ZTSIM_UE, POOL = "100.64.0.2", "100.64.0.1", "100.64.0.0/14"
UE_STRANGER = "100.64.0.3"  # in the pool, in no class: the table must refuse it
# The new-flow trials take turns among these (bench/net.py says why).
UE_TRIALS = tuple(f"100.64.0.{32 + i}" for i in range(32))
UE_PLAIN, GW_PLAIN_UE = "100.68.0.2", "100.68.0.1"
SITE_ZTSIM, GW_ZTSIM_SITE, SITE_NET = "172.31.77.2", "172.31.77.1", "172.31.77.0/24"
SITE_PLAIN, GW_PLAIN_SITE = "172.31.78.2", "172.31.78.1"
IPERF_PORT = 5201  # iperf3's default port: its control connection and its data
CONNECT_PORT, STREAM_PORT = 9001, 9002  # the site's listeners for the revocation trials
TOOLS = ("nft", "conntrack", "iperf3")
_SBIN = "/usr/sbin:/sbin:/usr/bin:/bin"


def why_not() -> str:
    """Why the bench cannot run here ("" when it can)."""
    reason = netns_unusable()
    for tool in TOOLS:
        if not reason and shutil.which(tool, path=_SBIN) is None:
            reason = f"needs {tool} (Debian package {'nftables' if tool == 'nft' else tool})"
    return reason


@dataclass(frozen=True, slots=True)
class Route:
    """One way from the UE to the site: through `gateway`, from `source` to `target`."""

    name: str
    gateway: str
    source: str
    target: str


@dataclass
class Topology:
    """The four namespaces; use as a context manager."""

    tag: str = field(default_factory=new_tag)
    _made: list[str] = field(default_factory=list)
    _servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def ue(self) -> str:
        return f"{self.tag}-ue"

    @property
    def site(self) -> str:
        return f"{self.tag}-site"

    @property
    def ztsim(self) -> Route:
        return Route("ztsim", f"{self.tag}-gwz", UE_ZTSIM, SITE_ZTSIM)

    @property
    def plain(self) -> Route:
        return Route("plain", f"{self.tag}-gwp", UE_PLAIN, SITE_PLAIN)

    def __enter__(self) -> Topology:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> None:
        reap_stale()
        for ns in (self.ue, self.ztsim.gateway, self.plain.gateway, self.site):
            ip("netns", "add", ns)
            self._made.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        z, p = self.ztsim.gateway, self.plain.gateway
        self._pair(self.ue, "u0", f"{UE_ZTSIM}/14", z, "g0", f"{GW_ZTSIM_UE}/14")
        self._pair(self.ue, "u1", f"{UE_PLAIN}/24", p, "g0", f"{GW_PLAIN_UE}/24")
        self._pair(z, "g1", f"{GW_ZTSIM_SITE}/24", self.site, "s0", f"{SITE_ZTSIM}/24")
        self._pair(p, "g1", f"{GW_PLAIN_SITE}/24", self.site, "s1", f"{SITE_PLAIN}/24")
        for address in (UE_STRANGER, *UE_TRIALS):
            ip("-n", self.ue, "addr", "add", f"{address}/14", "dev", "u0")
        ip("-n", self.ue, "route", "add", SITE_NET, "via", GW_ZTSIM_UE, "src", UE_ZTSIM)
        ip("-n", self.ue, "route", "add", "172.31.78.0/24", "via", GW_PLAIN_UE)
        ip("-n", self.site, "route", "add", POOL, "via", GW_ZTSIM_SITE)
        ip("-n", self.site, "route", "add", "100.68.0.0/24", "via", GW_PLAIN_SITE)
        for gateway in (z, p):
            self.run(gateway, "sysctl", "-qw", "net.ipv4.ip_forward=1")

    @staticmethod
    def _pair(a: str, a_if: str, a_addr: str, b: str, b_if: str, b_addr: str) -> None:
        ip("-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b)
        for ns, name, address in ((a, a_if, a_addr), (b, b_if, b_addr)):
            ip("-n", ns, "addr", "add", address, "dev", name)
            ip("-n", ns, "link", "set", name, "up")

    def run(self, ns: str, *argv: str, timeout: float = 30, check: bool = True) -> str:
        """`argv` in namespace `ns`; its output, or (`check`) RuntimeError with its message."""
        done = subprocess.run(
            ["ip", "netns", "exec", ns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{argv[0]} in {ns}: {(done.stderr or done.stdout).strip()[:500]}")
        return done.stdout

    def start_iperf_server(self) -> None:
        """One iperf3 server in the site namespace, on both site addresses; waits until
        it listens (ss shows the socket), at most 10 s."""
        server = subprocess.Popen(
            ["ip", "netns", "exec", self.site, "iperf3", "-s", "-p", str(IPERF_PORT)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._servers.append(server)
        deadline = time.monotonic() + 10
        while f":{IPERF_PORT} " not in self.run(self.site, "ss", "-Htln"):
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("iperf3's server did not come up in the site namespace")
            time.sleep(0.05)

    def iperf(self, route: Route, seconds: float, *extra: str) -> dict[str, Any]:
        """One iperf3 client run from the UE over `route`, its JSON report. Client on CPU 0,
        server on CPU 1 (`-A 0,1`): the forwarding runs in the sender's softirq, so the
        sender's core pays for the gateway's work and the receiver does not compete."""
        argv = [
            "iperf3", "-c", route.target, "-B", route.source, "-p", str(IPERF_PORT),
            "-t", f"{seconds:g}", "-J", "--connect-timeout", "3000", *extra,
        ]  # fmt: skip
        if _cpus() >= 2:
            argv += ["-A", "0,1"]
        error = ""
        for _ in range(2):  # once more after a second: a server still busy with the last run
            out = self.run(self.ue, *argv, timeout=seconds + 30, check=False)
            try:
                report: dict[str, Any] = json.loads(out)
            except ValueError:
                report = {"error": out.strip()[:500] or "no report"}
            if "error" not in report:
                return report
            error = str(report["error"])
            time.sleep(1.0)
        raise RuntimeError(f"iperf3 over {route.name}: {error}")

    def tx_packets(self, route: Route) -> int:
        """Packets the gateway sent towards the site: what it forwarded."""
        listing = json.loads(self.run(route.gateway, "ip", "-s", "-j", "link", "show", "g1"))
        return int(listing[0]["stats64"]["tx"]["packets"])

    def close(self) -> None:
        for server in self._servers:
            server.terminate()
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=5)
        self._servers.clear()
        for ns in reversed(self._made):
            ip("netns", "del", ns, check=False)  # its veth ends go with it
        self._made.clear()


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def _abort(sock: socket.socket) -> None:
    """Close with a RST (SO_LINGER 0): nothing of the flow is retransmitted afterwards,
    when its address may be back in a class."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Listener:
    """A TCP listener in the site namespace: accepts and hands each connection to `serve`
    in a thread of its own. Closing it ends the accept loop."""

    def __init__(self, t: Topology, port: int, serve: Any) -> None:
        with entered(t.site):
            self.sock = socket.create_server((SITE_ZTSIM, port), backlog=64)
        self.sock.settimeout(0.2)
        self.serve = serve
        self.open = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while self.open:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self.open = False
        self.thread.join(timeout=2)
        self.sock.close()


def hang_up(conn: socket.socket) -> None:
    """The connect trials' server: accepted is enough."""
    conn.close()


def connect(t: Topology, source: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection from `source` in the UE namespace to the site (OSError if not)."""
    with entered(t.ue):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((source, 0))
        sock.settimeout(timeout)
        sock.connect((SITE_ZTSIM, port))
    except BaseException:
        sock.close()
        raise
    return sock


def refused_after(t: Topology, source: str, started: float, limit: float) -> float | None:
    """Connect from `source` until one is refused (the gateway's reject comes back as
    EHOSTUNREACH or EACCES, a site's RST as ECONNREFUSED); seconds from `started` (a
    perf_counter reading) to the refusal, None if none within `limit` seconds. Each
    attempt waits 50 ms at most; an accepted one is closed and tried again."""
    while time.perf_counter() - started < limit:
        try:
            _abort(connect(t, source, CONNECT_PORT, 0.05))
        except TimeoutError:
            continue
        except OSError:
            return time.perf_counter() - started
    return None


class Stream:
    """A paced TCP stream from the UE to the site: `chunk` octets every `every` seconds;
    `last_read` is when the site's receiver last read something (perf_counter)."""

    def __init__(self, t: Topology, source: str, chunk: int = 8192, every: float = 0.001):
        self.last_read = 0.0
        self.read = 0
        self.running = True
        self.chunk, self.every = chunk, every
        self._server: socket.socket | None = None
        self._accepted = threading.Event()
        self.listener = Listener(t, STREAM_PORT, self._receive)
        try:
            self.sock = connect(t, source, STREAM_PORT, 2.0)
        except BaseException:
            self.listener.close()
            raise
        self.sock.settimeout(0.05)
        self._sender = threading.Thread(target=self._send, daemon=True)
        self._sender.start()

    def _receive(self, conn: socket.socket) -> None:
        self._server = conn
        self._accepted.set()
        conn.settimeout(0.05)
        while self.running:
            try:
                data = conn.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            self.read += len(data)
            self.last_read = time.perf_counter()

    def _send(self) -> None:
        payload = b"z" * self.chunk
        while self.running:
            try:
                self.sock.send(payload)
            except TimeoutError:
                pass  # the window is shut (the gateway stopped the flow): keep trying
            except OSError:
                return
            time.sleep(self.every)

    def flowing(self, within: float) -> bool:
        """Bytes arrive: the receiver read something in the last `within` seconds."""
        return time.perf_counter() - self.last_read < within

    def close(self) -> None:
        self.running = False
        self._sender.join(timeout=2)
        _abort(self.sock)
        if self._accepted.wait(timeout=0.1) and self._server is not None:
            _abort(self._server)
        self.listener.close()
