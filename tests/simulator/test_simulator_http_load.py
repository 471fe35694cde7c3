"""The lean HTTP load generator: its framer without sockets (any split of a stream of
responses gives the same statuses), then runs against the standard library's HTTP/1.1
server on loopback: every request sent on its own connection in turn, every response
counted by status, the bounds by count and by time, silence counted as unanswered, and
a server that hangs up ending the run with an error."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ztsim.simulator.http_load import MAX_HEAD, HttpLoad, HttpLoadError, ResponseFramer


def response(status: int, body: bytes, *, name: bytes = b"Content-Length") -> bytes:
    return b"HTTP/1.1 %d X\r\nServer: t\r\n%s: %d\r\n\r\n" % (status, name, len(body)) + body


responses = st.lists(
    st.tuples(st.integers(100, 599), st.binary(max_size=300)), min_size=1, max_size=8
)


@given(responses, st.data())
def test_any_split_of_the_stream_gives_the_same_statuses(
    answers: list[tuple[int, bytes]], data: st.DataObject
) -> None:
    stream = b"".join(response(status, body) for status, body in answers)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    framer = ResponseFramer()
    seen: list[int] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        seen += framer.feed(stream[start:end])
    assert seen == [status for status, _ in answers]
    assert framer.pending == 0


def test_a_body_that_looks_like_a_head_is_still_body() -> None:
    body = response(500, b"inner") + b"\r\n\r\n"
    framer = ResponseFramer()
    assert framer.feed(response(200, body) + response(404, b"")) == [200, 404]


@pytest.mark.parametrize("name", [b"content-length", b"CONTENT-LENGTH", b"Content-length"])
def test_the_length_header_is_found_in_any_case(name: bytes) -> None:
    assert ResponseFramer().feed(response(201, b"{}", name=name)) == [201]


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nX-Content-Length: 3\r\n\r\nabc", "Content-Length"),
        (b"SMTP 220 hello\r\nContent-Length: 0\r\n\r\n", "status line"),
        (b"HTTP/2 200\r\nContent-Length: 0\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * MAX_HEAD, "MAX_HEAD"),
    ],
)
def test_what_it_cannot_frame_is_an_error(stream: bytes, message: str) -> None:
    with pytest.raises(HttpLoadError, match=message):
        ResponseFramer().feed(stream)


# -- against a real server -------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    seen: list[tuple[int, str]]  # (client port, path), set on the class by the fixture
    delay: float = 0.0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.client_address[1], self.path))
        if self.path == "/hang-up":
            self.close_connection = True
            self.connection.close()
            return
        time.sleep(self.delay)
        status = 404 if self.path == "/missing" else 200
        body = b'{"ok": true}'
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the generator gave up on this answer and closed the connection
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


Server = tuple[tuple[str, int], type[Handler]]


@pytest.fixture
def server() -> Iterator[Server]:
    handler = type("H", (Handler,), {"seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield ("127.0.0.1", httpd.server_address[1]), handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def post(path: str) -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}" % path.encode()


def test_each_connection_sends_its_own_requests_in_turn(server: Server) -> None:
    address, handler = server
    lists = [[post("/a0"), post("/a1"), post("/missing")], [post("/b0")]]
    result = HttpLoad(address, lists).run(12, seconds=10)
    assert (result.sent, result.answered, result.unanswered) == (12, 12, 0)
    by_port: dict[int, list[str]] = {}
    for port, path in handler.seen:
        by_port.setdefault(port, []).append(path)
    assert len(by_port) == 2
    b, a = sorted(by_port.values(), key=lambda paths: paths[0] == "/a0")
    assert set(b) == {"/b0"}
    assert a == (["/a0", "/a1", "/missing"] * 4)[: len(a)]
    assert len(a) + len(b) == 12
    assert result.statuses == {200: 12 - a.count("/missing"), 404: a.count("/missing")}
    assert result.ok == result.statuses[200]
    assert result.rps > 0
    assert result.client_cpu >= 0


def test_the_run_ends_at_its_time_bound(server: Server) -> None:
    address, handler = server
    handler.delay = 0.05
    started = time.perf_counter()
    result = HttpLoad(address, [[post("/x")]]).run(1_000_000, seconds=0.3)
    took = time.perf_counter() - started
    assert 2 <= result.answered < 20
    assert result.unanswered == 0
    assert took < 2


def test_silence_past_the_timeout_is_counted_unanswered(server: Server) -> None:
    address, handler = server
    handler.delay = 1.0
    result = HttpLoad(address, [[post("/slow")], [post("/slow")]], timeout=0.2).run(10, seconds=0.1)
    assert (result.sent, result.answered, result.unanswered) == (2, 0, 2)


def test_a_server_that_hangs_up_ends_the_run(server: Server) -> None:
    address, _ = server
    with pytest.raises(HttpLoadError, match="closed"):
        HttpLoad(address, [[post("/hang-up")]]).run(5, seconds=5)


def test_a_run_needs_requests_and_bounds() -> None:
    with pytest.raises(ValueError, match="at least one request"):
        HttpLoad(("127.0.0.1", 9), [[]])
    with pytest.raises(ValueError, match="positive"):
        HttpLoad(("127.0.0.1", 9), [[post("/")]]).run(0, seconds=1)
