"""The userspace Geneve endpoint for real: two namespaces, each with a TUN device of
ours, the underlay between them over veth, and HTTP between inner addresses through the
tunnel, as tshark sees it on the underlay. A source nobody classified gets nothing
through."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import select
import shutil
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ztsim.net.endpoint import Endpoint, Site
from ztsim.net.identity_option import (
    OPTION_CLASS,
    TYPE_IDENTITY,
    TYPE_POLICY_CLASS,
    ClassTag,
    Subject,
)
from ztsim.net.tun import TunnelPump, open_tun, overhead, udp_socket
from ztsim.net.tunnel_routes import TunnelRoutes

from support.netns_hosts import Fabric, Host, entered, ip, netns_unusable

UE, UE_UNKNOWN, SERVER = "10.45.0.7", "10.45.0.8", "10.20.0.5"
VNI = 4242
TSHARK = shutil.which("tshark")
SUBJECT = Subject(ClassTag(1, 3), "0123456789abcdef0123456789abcdef")

needs_netns = pytest.mark.skipif(
    bool(netns_unusable()) or not os.path.exists("/dev/net/tun"),
    reason=netns_unusable() or "needs /dev/net/tun",
)


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello {self.client_address[0]}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads the answer, not the log."""


class _Server(HTTPServer):
    def server_bind(self) -> None:
        """Bound without HTTPServer's reverse lookup of its address (no DNS in here)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "site", 8080


def _pump(host: Host, name: str, engine: Endpoint, local: str, routed: str) -> TunnelPump:
    """A TUN device `name` in `host` owning `local`, with `routed` sent into it."""
    with entered(host.ns):
        fd = open_tun(name)
        try:
            sock = udp_socket(host.address)
        except BaseException:
            os.close(fd)
            raise
    pump = TunnelPump(engine, fd, sock)
    inner = ("netns", "exec", host.ns, "ip")
    # IPv4 only: no router solicitations from the device to count as unroutable.
    done = host.run("sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1")
    assert not done.strip(), done
    ip(*inner, "link", "set", name, "mtu", str(1500 - overhead(32)), "up")
    ip(*inner, "addr", "add", f"{local}/32", "dev", "lo")
    ip(*inner, "route", "add", routed, "dev", name)
    return pump


@contextlib.contextmanager
def _world() -> Iterator[tuple[Host, Host, TunnelPump, TunnelPump]]:
    with Fabric() as fabric:
        gw_host = fabric.add_host("gw", 2)
        site_host = fabric.add_host("site", 3)
        known = ipaddress.ip_address(UE).packed
        gateway = Endpoint(
            [Site("hq", VNI, site_host.address)],
            TunnelRoutes([("10.20.0.0/16", "hq")]),
            lambda raw: SUBJECT if raw == known else None,
        )
        site = Endpoint([Site("gw", VNI, gw_host.address)], TunnelRoutes([("10.45.0.0/16", "gw")]))
        pumps: list[TunnelPump] = []
        try:
            pumps.append(_pump(gw_host, f"{fabric.tag}t", gateway, UE, "10.20.0.0/16"))
            ip("netns", "exec", gw_host.ns, "ip", "addr", "add", f"{UE_UNKNOWN}/32", "dev", "lo")
            pumps.append(_pump(site_host, f"{fabric.tag}t", site, SERVER, "10.45.0.0/16"))
            for pump in pumps:
                pump.start()
            yield gw_host, site_host, pumps[0], pumps[1]
        finally:
            for pump in pumps:
                pump.stop()


def _capture(host: Host) -> subprocess.Popen[str]:
    """tshark in `host`, decoding the first Geneve datagram that arrives; returns once
    it is capturing."""
    assert TSHARK is not None
    argv = [TSHARK, "-n", "-l", "-i", "any", "-f", f"udp dst port 6081 and dst host {host.address}"]
    argv += ["-c", "1", "-a", "duration:10", "-T", "fields", "-E", "separator=|"]
    argv += ["-e", "geneve.vni", "-e", "geneve.option.class", "-e", "geneve.option.type"]
    proc = subprocess.Popen(
        host.command(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    # "Capturing on" comes before the capture runs; tshark 3.6+ then says "Capture
    # started." (older ones say nothing more: a second is waited instead).
    seen = ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 1.0)
        line = proc.stderr.readline() if ready else ""
        if "Capture started" in line or (not ready and "Capturing on" in seen):
            return proc
        seen += line
    proc.kill()
    raise AssertionError("tshark did not start capturing")


def _get(ns: str, source: str, timeout: float) -> bytes:
    with entered(ns):
        conn = socket.create_connection((SERVER, 8080), timeout=timeout, source_address=(source, 0))
    with conn:
        conn.sendall(b"GET / HTTP/1.0\r\nHost: site\r\n\r\n")
        chunks = []
        while chunk := conn.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


def test_the_overhead_is_outer_ipv4_udp_and_geneve() -> None:
    assert overhead(0) == 20 + 8 + 8
    assert 1500 - overhead(32) == 1432


@pytest.mark.parametrize("name", ["", "x" * 16])
def test_a_tun_name_must_fit_the_kernels_limit(name: str) -> None:
    with pytest.raises(ValueError, match="interface name"):
        open_tun(name)


@needs_netns
def test_http_through_the_tunnel_and_nothing_from_an_unclassified_source() -> None:
    with _world() as (gw_host, site_host, gateway, site):
        with entered(site_host.ns):
            server = _Server((SERVER, 8080), _Hello)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        capture = None
        try:
            capture = _capture(site_host) if TSHARK else None
            answer = _get(gw_host.ns, UE, timeout=5)
            assert answer.startswith(b"HTTP/1.0 200")
            assert answer.endswith(f"hello {UE}".encode())
            assert gateway.engine.sent > 0
            assert site.engine.received > 0
            assert site.engine.sent > 0
            assert gateway.engine.received > 0
            assert not gateway.engine.drops
            assert not site.engine.drops
            if capture is not None:  # what a site's sniffer sees on the underlay
                out, err = capture.communicate(timeout=15)
                assert out.strip(), err
                vni, classes, types = out.strip().split("|")
                assert int(vni, 0) == VNI
                assert [int(c, 0) for c in classes.split(",")] == [OPTION_CLASS] * 2
                assert [int(t, 0) for t in types.split(",")] == [TYPE_POLICY_CLASS, TYPE_IDENTITY]

            with pytest.raises(TimeoutError):
                _get(gw_host.ns, UE_UNKNOWN, timeout=1)
            assert gateway.engine.drops["unknown_source"] > 0
        finally:
            if capture is not None and capture.poll() is None:
                capture.kill()
                capture.communicate()
            server.shutdown()
            server.server_close()
            thread.join(5)
