"""The outbound client against real loopback servers: pinned addresses, every redirect
hop checked, one message for every network failure."""

from __future__ import annotations

import socket
import threading
from collections.abc import Generator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ztsim.netguard import NotAllowed, parse_ranges
from ztsim.outbound import FetchFailed, OutboundClient

HITS: list[tuple[str, str]] = []  # (server address, Host header)
POSTS: list[tuple[str, dict[str, str], bytes]] = []  # (path, headers, body)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        bound = self.server.server_address
        host = str(bound[0]) if isinstance(bound, tuple) else str(bound)
        HITS.append((host, self.headers.get("Host", "")))
        target = getattr(self.server, "redirect_to", None)
        if target:
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"||inside.test^\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        POSTS.append((self.path, dict(self.headers.items()), self.rfile.read(length)))
        target = getattr(self.server, "redirect_to", None)
        self.send_response(307 if target else 202)
        if target:
            self.send_header("Location", target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(host: str, redirect_to: str | None = None) -> Iterator[int]:
    server = ThreadingHTTPServer((host, 0), _Handler)
    server.redirect_to = redirect_to  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def inside() -> Iterator[int]:
    HITS.clear()
    yield from _serve("127.0.0.1")


def _fixed(address: str) -> object:
    def resolve(host: str, port: int) -> list[str]:
        return [address]

    return resolve


def test_loopback_is_refused_by_default_and_never_contacted(inside: int) -> None:
    client = OutboundClient()
    for url in (
        f"http://127.0.0.1:{inside}/l",
        f"http://[::ffff:127.0.0.1]:{inside}/l",
        f"http://localhost:{inside}/l",  # a name resolving to loopback (system resolver)
        f"http://2130706433:{inside}/l",  # 127.0.0.1 as one integer
    ):
        with pytest.raises(NotAllowed):
            client.get(url)
    with pytest.raises(NotAllowed):
        client.get(f"http://[::1]:{inside}/l")
    assert HITS == []


def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    client = OutboundClient(resolver=_fixed("10.20.30.40"))  # type: ignore[arg-type]
    with pytest.raises(NotAllowed):
        client.get("http://lists.example.test/list")


def test_the_allowed_range_lets_it_through_pinned_to_the_checked_address(inside: int) -> None:
    client = OutboundClient(
        parse_ranges(["127.0.0.0/8"]),
        resolver=_fixed("127.0.0.1"),  # type: ignore[arg-type]
    )
    got = client.get(f"http://lists.example.test:{inside}/list")
    assert (got.status, got.body) == (200, b"||inside.test^\n")
    # Connected to the address checked; the name went in the Host header, unresolved again.
    assert [("127.0.0.1", f"lists.example.test:{inside}")] == HITS


def test_a_redirect_to_loopback_from_an_allowed_host_is_refused(inside: int) -> None:
    redirecting = _serve("127.0.0.2", redirect_to=f"http://127.0.0.1:{inside}/list")
    port = next(redirecting)
    assert isinstance(redirecting, Generator)
    try:
        only_front = OutboundClient(parse_ranges(["127.0.0.2/32"]))
        with pytest.raises(NotAllowed):
            only_front.get(f"http://127.0.0.2:{port}/start")
        assert [h[0] for h in HITS] == ["127.0.0.2"]  # the loopback target never saw a request
        both = OutboundClient(parse_ranges(["127.0.0.0/8"]))
        assert both.get(f"http://127.0.0.2:{port}/start").status == 200
    finally:
        redirecting.close()


def test_network_failures_are_one_message() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    client = OutboundClient(parse_ranges(["127.0.0.0/8"]), timeout=2)
    messages = set()
    for url in (f"http://127.0.0.1:{closed}/", "http://no-such-host.invalid/"):
        with pytest.raises(FetchFailed) as caught:
            client.get(url)
        messages.add(str(caught.value))
    assert messages == {"could not fetch the URL"}


# -- POST (notification sinks) ------------------------------------------------------------


def test_post_is_refused_for_loopback_by_default_and_never_sent(inside: int) -> None:
    POSTS.clear()
    for url in (f"http://127.0.0.1:{inside}/sink", f"http://localhost:{inside}/sink"):
        with pytest.raises(NotAllowed):
            OutboundClient().post(url, b"{}")
    assert POSTS == []


def test_post_sends_the_body_and_headers_to_the_checked_address(inside: int) -> None:
    POSTS.clear()
    client = OutboundClient(
        parse_ranges(["127.0.0.0/8"]),
        resolver=_fixed("127.0.0.1"),  # type: ignore[arg-type]
    )
    got = client.post(
        f"http://sink.example.test:{inside}/hook?x=1",
        b'{"a":1}',
        {"Content-Type": "application/cloudevents+json", "Authorization": "Bearer t"},
    )
    assert got.status == 202
    ((path, headers, body),) = POSTS
    assert (path, body) == ("/hook?x=1", b'{"a":1}')
    assert headers["Host"] == f"sink.example.test:{inside}"
    assert headers["Content-Type"] == "application/cloudevents+json"
    assert headers["Authorization"] == "Bearer t"
    assert headers["Content-Length"] == "7"


def test_post_follows_no_redirect(inside: int) -> None:
    POSTS.clear()
    redirecting = _serve("127.0.0.2", redirect_to=f"http://127.0.0.1:{inside}/elsewhere")
    port = next(redirecting)
    assert isinstance(redirecting, Generator)
    try:
        client = OutboundClient(parse_ranges(["127.0.0.0/8"]))
        got = client.post(f"http://127.0.0.2:{port}/sink", b"x")
        assert (got.status, got.headers["location"]) == (
            307,
            f"http://127.0.0.1:{inside}/elsewhere",
        )
        assert [p for p, _, _ in POSTS] == ["/sink"]  # the redirect's target saw nothing
    finally:
        redirecting.close()


def test_post_network_failures_are_one_message() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    client = OutboundClient(parse_ranges(["127.0.0.0/8"]), timeout=2)
    with pytest.raises(FetchFailed, match=r"^could not fetch the URL$"):
        client.post(f"http://127.0.0.1:{closed}/", b"{}")
