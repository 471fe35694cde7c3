"""The private-connectivity path end to end, in three namespaces the test creates:

- `ue`: the SIMs' addresses (as RADIUS leased them) on one veth towards the gateway,
  default route through it (10.45.0.1);
- `gw`: ztsim's gateway, where the net role runs (nft, conntrack and ip under
  `ip netns exec`), forwarding; its underlay address 198.18.0.1 (RFC 2544's benchmarking
  range) on `u0`, a veth towards the site;
- `site`: ztsim's own Geneve endpoint as the site's end (`Endpoint` with `subjects=None`,
  so it sends no options, and a `TunnelPump` on TUN `gt0`), the UE prefix routed into
  it, and a private service on 10.30.0.5: HTTP on 8080, a TCP echo on 9000.

The site's tunnel and its network are not made here: the test declares them through the
net store, and the role builds the gateway's end from the change feed. Every name
starts with a `netns_hosts.new_tag()`: `close` deletes all, and a run killed outright is
reaped by the next one (`reap_stale`).
"""

from __future__ import annotations

import http.server
import os
import shutil
import socketserver
import subprocess
import threading
from dataclasses import dataclass, field

from ztsim.net.endpoint import Endpoint, Site
from ztsim.net.tun import TunnelPump, open_tun, overhead, udp_socket
from ztsim.net.tunnel_routes import TunnelRoutes

from support.net_capture import GENEVE_FIELDS, capture_first
from support.net_flows import EchoFlow, connect_time, curl_status, run_in
from support.netns_hosts import entered, ip, netns_unusable, new_tag, reap_stale

GW_UNDERLAY, SITE_UNDERLAY = "198.18.0.1", "198.18.0.2"
GW_UE, UE_PREFIX = "10.45.0.1", "10.45.0.0/24"
SERVICE, SITE_PREFIX = "10.30.0.5", "10.30.0.0/24"
HTTP_PORT, ECHO_PORT = 8080, 9000
VNI = 5001
BODY = b"private\n"


def why_skip() -> str:
    reason = netns_unusable()
    for tool in ("nft", "conntrack", "curl"):
        if not reason and shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin") is None:
            reason = f"needs {tool}"
    if not reason and not os.path.exists("/dev/net/tun"):
        reason = "needs /dev/net/tun"
    return reason


class _Http(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True


@dataclass
class GatewayWorld:
    tag: str = field(default_factory=new_tag)
    spaces: list[str] = field(default_factory=list)
    pump: TunnelPump | None = None
    servers: list[socketserver.TCPServer] = field(default_factory=list)

    @property
    def ue(self) -> str:
        return f"{self.tag}-ue"

    @property
    def gw(self) -> str:
        return f"{self.tag}-gw"

    @property
    def site(self) -> str:
        return f"{self.tag}-site"

    @property
    def prefix(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.gw)

    def open(self, ue_addresses: tuple[str, ...]) -> GatewayWorld:
        reap_stale()
        for ns in (self.ue, self.gw, self.site):
            ip("netns", "add", ns)
            self.spaces.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", self.gw, "link", "add", "ue0", "type", "veth", "peer", "name", "eth0", "netns",
           self.ue)  # fmt: skip
        ip("-n", self.gw, "link", "add", "u0", "type", "veth", "peer", "name", "u0", "netns",
           self.site)  # fmt: skip
        ip("-n", self.gw, "addr", "add", f"{GW_UE}/24", "dev", "ue0")
        ip("-n", self.gw, "addr", "add", f"{GW_UNDERLAY}/24", "dev", "u0")
        ip("-n", self.site, "addr", "add", f"{SITE_UNDERLAY}/24", "dev", "u0")
        for ns, device in ((self.gw, "ue0"), (self.gw, "u0"), (self.ue, "eth0"), (self.site, "u0")):
            ip("-n", ns, "link", "set", device, "up")
        for address in ue_addresses:
            ip("-n", self.ue, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", self.ue, "route", "add", "default", "via", GW_UE)
        ip("netns", "exec", self.gw, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self._site_end()
        return self

    def _site_end(self) -> None:
        engine = Endpoint([Site("gw", VNI, GW_UNDERLAY)], TunnelRoutes([(UE_PREFIX, "gw")]))
        with entered(self.site):
            fd = open_tun("gt0")
            sock = udp_socket(SITE_UNDERLAY)
        self.pump = TunnelPump(engine, fd, sock)
        self.pump.start()
        ip("-n", self.site, "link", "set", "gt0", "mtu", str(1500 - overhead(0)), "up")
        ip("-n", self.site, "route", "add", UE_PREFIX, "dev", "gt0")
        ip("-n", self.site, "addr", "add", f"{SERVICE}/32", "dev", "lo")
        with entered(self.site):
            servers: list[socketserver.TCPServer] = [
                _HttpServer((SERVICE, HTTP_PORT), _Http),
                _EchoServer((SERVICE, ECHO_PORT), _Echo),
            ]
        for server in servers:
            self.servers.append(server)
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    def exec(self, ns: str, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        return run_in(ns, *argv, timeout=timeout)

    def curl(self, source: str) -> str:
        """The HTTP status of a GET from `source` to the site's service, or "failed (rc)"."""
        return curl_status(self.ue, source, f"http://{SERVICE}:{HTTP_PORT}/")

    def connect(self, source: str, port: int = HTTP_PORT, timeout: float = 1.0) -> float:
        """Seconds a new TCP connection from `source` took; OSError if refused."""
        return connect_time(self.ue, source, (SERVICE, port), timeout)

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
        if self.pump is not None:
            self.pump.stop()
        for ns in reversed(self.spaces):
            ip("netns", "del", ns, check=False)
        self.spaces.clear()


class Echo(EchoFlow):
    """One long-lived TCP flow from `source` to the site's echo service."""

    def __init__(self, world: GatewayWorld, source: str) -> None:
        super().__init__(world.ue, source, (SERVICE, ECHO_PORT))


def capture_geneve(world: GatewayWorld) -> subprocess.Popen[str]:
    """tshark on the gateway's underlay veth for the first Geneve datagram it sends, its
    fields separated by "|"; returns once tshark is capturing."""
    return capture_first(world.gw, 6081, GW_UNDERLAY, GENEVE_FIELDS)
