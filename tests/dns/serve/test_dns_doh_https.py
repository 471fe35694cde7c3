"""The gateway process's own DoH listener (RFC 8484 over HTTP/2 and TLS), asked by the
clients users have: curl resolving a URL's host with `--doh-url`, and `kdig +https`, by
client address and by device token; curl again for the refusals; a plain-HTTP client and
an HTTP/1.1-only client refused without harm; an idle connection closed."""

from __future__ import annotations

import asyncio
import base64
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from ztsim.dns.policy.config import load_config
from ztsim.dns.serve.doh import MEDIA_TYPE
from ztsim.dns.serve.doh_https import DohHttpsServer, doh_context, serve_doh
from ztsim.dns.serve.runner import GatewayOptions, GatewayProcess
from ztsim.dns.serve.tcp import tcp_socket
from ztsim.node.dns import gateway_options
from ztsim.settings import Settings

from support.dns_gateway_harness import KDIG, free_port, kdig, records
from support.dns_tls_cert import HOSTNAME, write_cert
from support.leaks import LEAKS

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None or KDIG is None, reason="needs curl and kdig")
TOKEN = "devtok-3c1e9a7b55d04f2e8a6b9c0d1e2f3a4b"
QUERY = b"\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05probe\x04test\x00\x00\x01\x00\x01"
# Alice (127.0.0.1) sees probe.test at loopback, the phone (by its token) phone.test; no
# upstream, so every other name fails (SERVFAIL).
POLICY = f"""
[[orgs]]
id = "org"
[[orgs.rules]]
id = "probe"
action = "override"
domains = ["probe.test"]
answer = ["127.0.0.1"]
identities = ["alice"]
[[orgs.rules]]
id = "phone"
action = "override"
domains = ["phone.test"]
answer = ["127.0.0.1"]
identities = ["phone"]
[[orgs.static]]
address = "127.0.0.1"
identity = "alice"
[[orgs.static]]
token = "{TOKEN}"
identity = "phone"
"""


class Served(NamedTuple):
    port: int  # the DoH listener
    cert: Path
    web: int  # a tiny HTTP responder on loopback, for curl to reach once resolved
    process: GatewayProcess
    loop: asyncio.AbstractEventLoop


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello {self.headers.get('host', '')}".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    LEAKS.add_secret(TOKEN)
    directory = tmp_path_factory.mktemp("doh-https")
    cert, key = write_cert(directory, ["127.0.0.1"])
    policy = directory / "policy.toml"
    policy.write_text(POLICY)
    port = free_port()
    options = GatewayOptions(
        "127.0.0.1",
        free_port(),
        [],
        policy,
        store_key=lambda: b"k" * 16,
        tls_cert=cert,
        tls_key=key,
        tls_port=free_port(),
        doh_port=port,
    )
    process = GatewayProcess(options, load_config(policy))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    web = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    web_thread = threading.Thread(target=web.serve_forever, daemon=True)
    web_thread.start()
    try:
        asyncio.run_coroutine_threadsafe(process.start(refresher=False), loop).result(10)
        yield Served(port, cert, web.server_address[1], process, loop)
        asyncio.run_coroutine_threadsafe(process.stop(), loop).result(10)
    finally:
        web.shutdown()
        web.server_close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def _curl(*args: str) -> subprocess.CompletedProcess[str]:
    assert CURL is not None
    return subprocess.run(
        [CURL, "--silent", "--show-error", "--max-time", "10", "--noproxy", "*", *args],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def _resolve_with_curl(
    served: Served, doh_path: str, name: str
) -> subprocess.CompletedProcess[str]:
    doh_url = f"https://127.0.0.1:{served.port}{doh_path}"
    url = f"http://{name}:{served.web}/"
    return _curl("--doh-url", doh_url, "--cacert", str(served.cert), url)


def test_curl_resolves_through_the_listener_by_address(served: Served) -> None:
    result = _resolve_with_curl(served, "/dns-query", "probe.test")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"hello probe.test:{served.web}"
    # The policy, not some other resolver: the phone's name is not Alice's.
    refused = _resolve_with_curl(served, "/dns-query", "phone.test")
    assert refused.returncode == 6, refused.stderr  # curl: could not resolve host


def test_curl_resolves_with_a_device_token_and_the_token_is_never_logged(served: Served) -> None:
    result = _resolve_with_curl(served, f"/dns-query/{TOKEN}", "phone.test")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"hello phone.test:{served.web}"
    assert _resolve_with_curl(served, f"/dns-query/{TOKEN}", "probe.test").returncode == 6
    assert _resolve_with_curl(served, "/dns-query/not-a-token", "phone.test").returncode == 6
    assert not [text for _, text in LEAKS.emitted if TOKEN in text]


def _kdig(served: Served, path: str, *args: str, source: str = "127.0.0.1") -> str:
    tls = (f"+tls-ca={served.cert}", f"+tls-hostname={HOSTNAME}", f"+https={path}")
    return kdig(served.port, *tls, *args, source=source)


@pytest.mark.parametrize("method", ["+nohttps-get", "+https-get"])
def test_kdig_over_https_by_address_and_by_token(served: Served, method: str) -> None:
    out = _kdig(served, "/dns-query", method, "probe.test", "A")
    assert records(out) == [["probe.test.", "60", "IN", "A", "127.0.0.1"]], out
    out = _kdig(served, f"/dns-query/{TOKEN}", method, "phone.test", "A")
    assert records(out) == [["phone.test.", "60", "IN", "A", "127.0.0.1"]], out
    out = _kdig(served, "/dns-query/not-a-token", method, "phone.test", "A")
    assert "status: REFUSED" in out, out
    out = _kdig(served, "/dns-query", method, "probe.test", "A", source="127.0.0.2")
    assert "status: REFUSED" in out, out  # an address nobody holds


def _status(served: Served, *args: str) -> str:
    result = _curl("--cacert", str(served.cert), "-o", "/dev/null", "-w", "%{http_code} "
                   "%{http_version}", *args)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_answers_and_refusals_over_http2(served: Served) -> None:
    base = f"https://127.0.0.1:{served.port}"
    dns = base64.urlsafe_b64encode(QUERY).rstrip(b"=").decode()
    got = _curl(
        "--cacert", str(served.cert), "-D", "-", "-o", "/dev/null", f"{base}/dns-query?dns={dns}"
    )
    head = got.stdout.lower()
    assert head.startswith("http/2 200"), got.stdout + got.stderr
    assert f"content-type: {MEDIA_TYPE}" in head
    assert "cache-control: max-age=60" in head  # RFC 8484 §5.1: the answer's TTL
    assert _status(served, f"{base}/dns-query?dns=!!!") == "400 2"
    assert _status(served, f"{base}/dns-query") == "400 2"
    assert _status(served, f"{base}/elsewhere") == "404 2"
    assert _status(served, "-X", "DELETE", f"{base}/dns-query") == "405 2"
    post = ("-H", f"content-type: {MEDIA_TYPE}", "--data-binary")
    assert _status(served, *post, "@-", f"{base}/dns-query") == "400 2"  # empty body
    assert (
        _status(
            served, "-H", "content-type: text/plain", "--data-binary", "x" * 20, f"{base}/dns-query"
        )
        == "415 2"
    )
    assert _status(served, f"{base}/dns-query?dns=" + "A" * 9000) == "414 2"


def test_a_body_past_a_dns_message_is_413(served: Served, tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"\0" * 70000)
    args = ("-H", f"content-type: {MEDIA_TYPE}", "--data-binary", f"@{big}")
    assert _status(served, *args, f"https://127.0.0.1:{served.port}/dns-query") == "413 2"


def test_plain_http_and_http11_only_clients_are_refused_cleanly(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(b"GET /dns-query HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while chunk := sock.recv(4096):  # closed by the server: no hang
            received += chunk
        assert b"HTTP/" not in received
    plain = _curl(f"http://127.0.0.1:{served.port}/dns-query")
    assert plain.returncode in (52, 56), plain  # empty reply / failure receiving
    old = _curl("--http1.1", "--cacert", str(served.cert), f"https://127.0.0.1:{served.port}/")
    assert old.returncode != 0, old
    # ...and the listener still serves.
    out = _kdig(served, "/dns-query", "probe.test", "A")
    assert records(out) == [["probe.test.", "60", "IN", "A", "127.0.0.1"]], out


def test_an_idle_connection_gets_goaway_and_is_closed(served: Served) -> None:
    async def listen() -> DohHttpsServer:
        sock = tcp_socket("127.0.0.1", 0)
        context = doh_context(str(served.cert), str(served.cert.with_name("key.pem")))
        return await serve_doh(served.process.gateway, sock, context, idle_timeout=0.3)

    server = asyncio.run_coroutine_threadsafe(listen(), served.loop).result(10)
    try:
        assert server.server is not None
        port = server.server.sockets[0].getsockname()[1]
        context = ssl.create_default_context(cafile=str(served.cert))
        context.set_alpn_protocols(["h2"])
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=HOSTNAME) as tls,
        ):
            assert tls.selected_alpn_protocol() == "h2"
            tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            started, received = time.monotonic(), b""
            while chunk := tls.recv(4096):
                received += chunk
            assert 0.25 < time.monotonic() - started < 3
            assert b"\x07\x00\x00\x00\x00\x00" in received  # a GOAWAY frame (RFC 9113 §6.8)
        for _ in range(100):  # connection_lost runs on the gateway's loop, maybe just after
            if not server.connections:
                break
            time.sleep(0.01)
        assert not server.connections
    finally:
        served.loop.call_soon_threadsafe(server.close)


def test_no_listener_without_a_certificate_and_the_port_comes_from_settings(
    tmp_path: Path,
) -> None:
    port = free_port()
    options = GatewayOptions(
        "127.0.0.1", free_port(), [], None, store_key=lambda: b"k" * 16, doh_port=port
    )
    process = GatewayProcess(options)

    async def started_and_stopped() -> None:
        await process.start(refresher=False)
        try:
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", port)
        finally:
            await process.stop()

    asyncio.run(started_and_stopped())
    assert gateway_options(Settings(data_dir=tmp_path, dns_doh_port=9443), None).doh_port == 9443
    assert Settings(data_dir=tmp_path).dns_doh_port == 8443
