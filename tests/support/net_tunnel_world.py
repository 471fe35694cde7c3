"""A gateway with a UE behind it and two sites in front, each a namespace of its own.

- `wire`: a bridge, the underlay 198.18.0.0/24 (RFC 2544's benchmarking range): the
  gateway .1, the Geneve site .2, the VXLAN site .3. Nothing touches the root namespace.
- `ue`: 10.45.0.7, its default route through the gateway (10.45.0.1), which forwards.
- `geneve site`: ztsim's own endpoint (`Endpoint` with `subjects=None`, a `TunnelPump`)
  on a TUN device, the UE prefix routed into it; a service on 10.30.0.5 and 10.31.0.5.
- `vxlan site`: a kernel VXLAN device towards the gateway, proxy ARP on it, the UE
  prefix routed into it; a service on 10.40.0.5.

Each service answers one line per connection: its site's name and the client address.
Every namespace's name starts with `ztsim-tn<pid>`; `close` deletes them all, and a
world whose process died is deleted by the next (`_reap`).
"""

from __future__ import annotations

import os
import secrets
import socket
import socketserver
import threading
from dataclasses import dataclass, field

from ztsim.net.endpoint import Endpoint, Site
from ztsim.net.tun import TunnelPump, open_tun, overhead, udp_socket
from ztsim.net.tunnel_routes import TunnelRoutes

from support.netns_hosts import entered, ip

GW, GENEVE_AT, VXLAN_AT = "198.18.0.1", "198.18.0.2", "198.18.0.3"
UE, UE_PREFIX = "10.45.0.7", "10.45.0.0/24"
GENEVE_VNI, VXLAN_VNI = 5001, 5002
SERVICE_PORT = 8080
_PREFIX = "ztsim-tn"


class _Answer(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: _Service = self.server  # type: ignore[assignment]
        self.request.sendall(f"{server.site} {self.client_address[0]}\n".encode())


class _Service(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, site: str, address: str) -> None:
        self.site = site
        super().__init__((address, SERVICE_PORT), _Answer)


def _reap() -> None:
    for line in ip("netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(_PREFIX):
            pid = name[len(_PREFIX) :].split("-")[0]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                ip("netns", "del", name, check=False)


@dataclass
class World:
    tag: str = field(default_factory=lambda: f"{_PREFIX}{os.getpid()}-{secrets.token_hex(3)}")
    spaces: list[str] = field(default_factory=list)
    pump: TunnelPump | None = None
    services: list[_Service] = field(default_factory=list)

    def ns(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def _space(self, name: str) -> str:
        ns = self.ns(name)
        ip("netns", "add", ns)
        self.spaces.append(ns)
        ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def _on_wire(self, ns: str, address: str) -> None:
        wire = self.ns("wire")
        port = f"p{len(self.spaces)}"
        ip("-n", wire, "link", "add", port, "type", "veth", "peer", "name", "u0", "netns", ns)
        ip("-n", wire, "link", "set", port, "master", "br0", "up")
        ip("-n", ns, "addr", "add", f"{address}/24", "dev", "u0")
        ip("-n", ns, "link", "set", "u0", "up")

    def open(self) -> World:
        _reap()
        wire = self._space("wire")
        ip("-n", wire, "link", "add", "br0", "type", "bridge")
        ip("-n", wire, "link", "set", "br0", "up")
        gw = self._space("gw")
        self._on_wire(gw, GW)
        ue = self._space("ue")
        ip("-n", gw, "link", "add", "ue0", "type", "veth", "peer", "name", "eth0", "netns", ue)
        ip("-n", gw, "addr", "add", "10.45.0.1/24", "dev", "ue0")
        ip("-n", gw, "link", "set", "ue0", "up")
        ip("-n", ue, "addr", "add", f"{UE}/24", "dev", "eth0")
        ip("-n", ue, "link", "set", "eth0", "up")
        ip("-n", ue, "route", "add", "default", "via", "10.45.0.1")
        ip("netns", "exec", gw, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self._geneve_site()
        self._vxlan_site()
        return self

    def _geneve_site(self) -> None:
        ns = self.ns("gs")
        self._space("gs")
        self._on_wire(ns, GENEVE_AT)
        engine = Endpoint([Site("gw", GENEVE_VNI, GW)], TunnelRoutes([(UE_PREFIX, "gw")]))
        with entered(ns):
            fd = open_tun("gt0")
            sock = udp_socket(GENEVE_AT)
        self.pump = TunnelPump(engine, fd, sock)
        self.pump.start()
        ip("-n", ns, "link", "set", "gt0", "mtu", str(1500 - overhead(0)), "up")
        ip("-n", ns, "route", "add", UE_PREFIX, "dev", "gt0")
        for address in ("10.30.0.5", "10.31.0.5"):
            self._serve(ns, "geneve-site", address)

    def _vxlan_site(self) -> None:
        ns = self.ns("vs")
        self._space("vs")
        self._on_wire(ns, VXLAN_AT)
        vxlan = ("type", "vxlan", "id", str(VXLAN_VNI), "remote", GW, "local", VXLAN_AT)
        ip("-n", ns, "link", "add", "vx", *vxlan, "dstport", "4789")
        ip("-n", ns, "link", "set", "vx", "mtu", "1450", "up")
        ip("netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.vx.proxy_arp=1")
        ip("-n", ns, "route", "add", UE_PREFIX, "dev", "vx")
        self._serve(ns, "vxlan-site", "10.40.0.5")

    def _serve(self, ns: str, site: str, address: str) -> None:
        ip("-n", ns, "addr", "add", f"{address}/32", "dev", "lo")
        with entered(ns):
            service = _Service(site, address)
        self.services.append(service)
        threading.Thread(target=service.serve_forever, args=(0.05,), daemon=True).start()

    def ask(self, address: str, timeout: float = 5.0) -> str:
        """The line the service at `address` answers to a connection from the UE."""
        with entered(self.ns("ue")):
            conn = socket.create_connection((address, SERVICE_PORT), timeout=timeout)
        with conn:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(256)
                if not chunk:
                    break
                data += chunk
        return data.decode().strip()

    def close(self) -> None:
        for service in self.services:
            service.shutdown()
            service.server_close()
        if self.pump is not None:
            self.pump.stop()
        for ns in reversed(self.spaces):
            ip("netns", "del", ns, check=False)
        self.spaces.clear()
