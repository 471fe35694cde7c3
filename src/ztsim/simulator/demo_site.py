"""The demo's site: Acme's head office behind a Geneve tunnel, reached from the phones
through ztsim's gateway. This module builds the place; the phones' visits and the three
checks made there are `demo_intranet`'s.

Three network namespaces, `ztdemo-<pid>-{ue,gw,site}`:

- `ue`: the phones' side of the packet gateway. It holds the addresses RADIUS leased
  (any address of the pool is local there) and routes everything to the gateway.
- `gw`: ztsim's gateway (the net role: nftables, the Geneve endpoint `ztg0`, the audit),
  forwarding between the phones and the tunnel.
- `site`: the head office: ztsim's own Geneve endpoint (no options on the way back), the
  pool routed into it, and the intranet's HTTP service.

The pool is on 127.0.0.0/8, since the simulated phones send their DNS from loopback when
the demo is not root, and an org has one pool (a session on the intranet APN gets the
SIM's same address). The kernel treats 127/8 as martian off the loopback device unless
`route_localnet` is set (ip-sysctl.rst): it is, in these three namespaces only, and the
gateway and the site route the pool in their `local` tables, more specific than 127/8
itself. Nothing of the host's own namespace is touched, and every namespace goes on
`close`, also after a failure; those of a demo that was killed are removed by the next.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ztsim.errors import ZtsimError
from ztsim.net.endpoint import Endpoint, Site
from ztsim.net.netns import in_named_namespace
from ztsim.net.tun import TunnelPump, open_endpoint, overhead
from ztsim.net.tunnel_routes import TunnelRoutes
from ztsim.simulator.demo_world import (
    GATEWAY_UNDERLAY,
    INTRANET,
    INTRANET_PORT,
    POOL,
    SITE_UNDERLAY,
    SITE_VNI,
)

PREFIX = "ztdemo-"
# The phones' link to the gateway: addresses for the next hop only (RFC 3927 link-local).
UE_LINK, GW_LINK = "169.254.80.2", "169.254.80.1"
SITE_TUN = "ztsite0"
_SBIN = "/usr/sbin:/sbin:/usr/bin:/bin"
_T = TypeVar("_T")


class SiteError(ZtsimError):
    """A namespace, link, route or the site's endpoint could not be made."""


def _tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=_SBIN)


def why_not(euid: int | None = None) -> str:
    """Why the site cannot run here ("" when it can): root, `ip netns`, nft, conntrack
    and a TUN device are needed."""
    if (os.geteuid() if euid is None else euid) != 0:
        return "it needs root (network namespaces, nftables)"
    ip = _tool("ip")
    if ip is None:
        return "it needs ip (iproute2)"
    probe = subprocess.run([ip, "netns", "list"], capture_output=True, check=False)  # noqa: S603
    if probe.returncode != 0:
        return "ip netns does not work here"
    for tool in ("nft", "conntrack"):
        if _tool(tool) is None:
            return f"it needs {tool}"
    if not Path("/dev/net/tun").exists():
        return "it needs /dev/net/tun"
    return ""


def _ip(*args: str) -> None:
    ip = _tool("ip") or "ip"
    done = subprocess.run([ip, *args], capture_output=True, text=True, timeout=20, check=False)  # noqa: S603
    if done.returncode != 0:
        raise SiteError(f"ip {' '.join(args)}: {done.stderr.strip()[:500]}")


def in_netns(ns: str, work: Callable[[], _T]) -> _T:
    """`work` run by a short-lived thread inside namespace `ns`: sockets it makes stay
    there, whichever thread uses them afterwards; the caller's thread never moves."""
    return in_named_namespace(ns, work)


def _reap() -> None:
    """Delete the namespaces of demos whose process is gone."""
    ip = _tool("ip") or "ip"
    listed = subprocess.run([ip, "netns", "list"], capture_output=True, text=True, check=False)  # noqa: S603
    for line in listed.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        pid = name.removeprefix(PREFIX).split("-")[0]
        if name.startswith(PREFIX) and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(SiteError):
                _ip("netns", "del", name)


class _Intranet(http.server.BaseHTTPRequestHandler):
    """The intranet's home page; connections are kept alive (HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection's thread ends after this

    def do_GET(self) -> None:
        body = b"Acme intranet\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """The demo prints its own lines."""


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """Silent: a phone whose connection was cut is no fault of the intranet's."""


class DemoSite:
    """The namespaces, the site's endpoint and its intranet service. `on_close` registers
    what must stop before the namespaces go (the net role in `gw`)."""

    def __init__(self) -> None:
        tag = f"{PREFIX}{os.getpid()}"
        self.ue, self.gw, self.site = f"{tag}-ue", f"{tag}-gw", f"{tag}-site"
        self._spaces: list[str] = []
        self._closers: list[Callable[[], None]] = []
        self._pump: TunnelPump | None = None
        self._server: _Server | None = None

    @property
    def gateway_prefix(self) -> tuple[str, ...]:
        """Commands run in the gateway's namespace (the net role's `nft_prefix`)."""
        return (_tool("ip") or "ip", "netns", "exec", self.gw)

    @property
    def underlay(self) -> str:
        return GATEWAY_UNDERLAY

    def on_close(self, closer: Callable[[], None]) -> None:
        self._closers.append(closer)

    def open(self) -> DemoSite:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def _open(self) -> None:
        _reap()
        for ns in (self.ue, self.gw, self.site):
            _ip("netns", "add", ns)
            self._spaces.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            # 127/8 off the loopback device: the pool crosses these namespaces (see above).
            self._sysctl(ns, "net.ipv4.conf.all.route_localnet=1")
        self._sysctl(self.gw, "net.ipv4.ip_forward=1")
        self._link(self.ue, "ue0", UE_LINK, self.gw, "ue-side", GW_LINK, 30)
        self._link(self.gw, "underlay", GATEWAY_UNDERLAY, self.site, "underlay", SITE_UNDERLAY, 30)
        _ip("-n", self.ue, "route", "add", "default", "via", GW_LINK)
        _ip("-n", self.gw, "route", "add", POOL, "via", UE_LINK, "table", "local")
        self._site_endpoint()
        _ip("-n", self.site, "addr", "add", f"{INTRANET}/32", "dev", "lo")
        server = in_netns(
            self.site,
            lambda: _Server((INTRANET, INTRANET_PORT), _Intranet),
        )
        self._server = server
        threading.Thread(
            target=server.serve_forever, args=(0.05,), name="ztdemo-intranet", daemon=True
        ).start()

    def _sysctl(self, ns: str, setting: str) -> None:
        sysctl = _tool("sysctl") or "sysctl"
        _ip("netns", "exec", ns, sysctl, "-qw", setting)

    def _link(
        self, a: str, a_if: str, a_addr: str, b: str, b_if: str, b_addr: str, length: int
    ) -> None:
        _ip("-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b)
        for ns, name, address in ((a, a_if, a_addr), (b, b_if, b_addr)):
            _ip("-n", ns, "addr", "add", f"{address}/{length}", "dev", name)
            _ip("-n", ns, "link", "set", name, "up")

    def _site_endpoint(self) -> None:
        """ztsim's Geneve endpoint at the site: the gateway as its one peer, the pool
        routed to it, no options on the way back (`subjects=None`)."""
        engine = Endpoint(
            [Site("gateway", SITE_VNI, GATEWAY_UNDERLAY)], TunnelRoutes([(POOL, "gateway")])
        )
        prefix = (_tool("ip") or "ip", "netns", "exec", self.site)
        fd, sock = open_endpoint(SITE_TUN, SITE_UNDERLAY, prefix)
        self._pump = TunnelPump(engine, fd, sock)
        self._pump.start()
        mtu = str(1500 - overhead(0))
        _ip("-n", self.site, "link", "set", SITE_TUN, "mtu", mtu, "up")
        _ip("-n", self.site, "route", "add", POOL, "dev", SITE_TUN, "table", "local")

    def close(self) -> None:
        """Everything stopped and deleted, each step whatever the others did."""
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                closer()
        self._closers.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._pump is not None:
            self._pump.stop()
            self._pump = None
        for ns in reversed(self._spaces):
            with contextlib.suppress(SiteError):
                _ip("netns", "del", ns)
        self._spaces.clear()
