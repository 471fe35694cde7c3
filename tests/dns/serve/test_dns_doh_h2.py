"""The DoH listener's HTTP/2 engine, sans I/O: h2's client frames in, our frames out.

Routes and refusals (404, 405, 413, 414, 415, 400), answers with their cache lifetime,
flow control both ways, a client's reset, and protocol errors that close the connection;
Hypothesis feeds it arbitrary bytes and arbitrary requests."""

from __future__ import annotations

import base64
import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)
from h2.exceptions import StreamClosedError
from h2.settings import SettingCodes
from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim.dns.serve.doh import MEDIA_TYPE
from ztsim.dns.serve.doh_h2 import MAX_TARGET, DohConnection, DohQuery

QUERY = (
    b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    b"\x03www\x07example\x04test\x00\x00\x01\x00\x01"
)
ANSWER = (
    b"\xab\xcd\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
    + QUERY[12:]
    + b"\xc0\x0c\x00\x01\x00\x01"
    + struct.pack("!I", 300)
    + b"\x00\x04\xc0\x00\x02\x01"
)
TOKEN = "devtok-abc"


@pytest.fixture(autouse=True, scope="module")
def _quiet_hpack() -> Iterator[None]:
    """hpack logs every header it codes at DEBUG: slow, and nothing to check here."""
    hpack = logging.getLogger("hpack")
    level = hpack.level
    hpack.setLevel(logging.INFO)
    yield
    hpack.setLevel(level)


def b64(wire: bytes) -> str:
    return base64.urlsafe_b64encode(wire).rstrip(b"=").decode()


@dataclass
class Response:
    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytes = b""
    ended: bool = False
    reset: int | None = None


class Client:
    """h2's own client against our engine, bytes moved by hand."""

    def __init__(self, server: DohConnection | None = None, **client_settings: int) -> None:
        self.server = server or DohConnection()
        self.h2 = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        self.h2.initiate_connection()
        if client_settings:
            self.h2.update_settings({SettingCodes[k]: v for k, v in client_settings.items()})
        self.responses: dict[int, Response] = {}
        self.terminated: ErrorCodes | int | None = None
        self.queries: list[DohQuery] = []

    def exchange(self) -> list[DohQuery]:
        """Move bytes both ways until neither side has more; the queries handed out."""
        new: list[DohQuery] = []
        while True:
            out = self.h2.data_to_send()
            if out:
                new += self.server.receive(out)
            back = self.server.data_to_send()
            if not back and not out:
                break
            if back and self.terminated is None:
                self._events(back)
        self.queries += new
        return new

    def _events(self, data: bytes) -> None:
        for event in self.h2.receive_data(data):
            if isinstance(event, ResponseReceived):
                response = self.responses.setdefault(event.stream_id, Response())
                headers = dict((bytes(k), bytes(v)) for k, v in event.headers)
                response.status = int(headers[b":status"])
                response.headers = headers
            elif isinstance(event, DataReceived):
                self.responses[event.stream_id].body += event.data
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, StreamEnded):
                self.responses[event.stream_id].ended = True
            elif isinstance(event, StreamReset):
                self.responses.setdefault(event.stream_id, Response()).reset = event.error_code
            elif isinstance(event, ConnectionTerminated):
                self.terminated = event.error_code

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> int:
        stream_id = self.h2.get_next_available_stream_id()
        fields = [
            (":method", method),
            (":scheme", "https"),
            (":authority", "dns.test"),
            (":path", path),
            *headers,
        ]
        self.h2.send_headers(stream_id, fields, end_stream=body is None)
        if body is not None:
            self.h2.send_data(stream_id, body, end_stream=True)
        return stream_id


def test_get_and_post_hand_out_queries_and_send_answers_with_their_lifetime() -> None:
    client = Client()
    get = client.request("GET", f"/dns-query?ct&dns={b64(QUERY)}")
    post = client.request("POST", f"/dns-query/{TOKEN}", QUERY, (("content-type", MEDIA_TYPE),))
    queries = client.exchange()
    assert queries == [DohQuery(get, QUERY, None), DohQuery(post, QUERY, TOKEN)]
    assert client.server.busy
    for query in queries:
        client.server.respond(query.stream_id, ANSWER)
    client.exchange()
    for stream_id in (get, post):
        response = client.responses[stream_id]
        assert response.status == 200
        assert response.ended
        assert response.headers[b"content-type"] == MEDIA_TYPE.encode()
        assert response.headers[b"cache-control"] == b"max-age=300"  # RFC 8484 §5.1
        assert response.body == ANSWER
    assert not client.server.busy


def test_a_token_is_percent_decoded_and_an_answer_none_is_400() -> None:
    client = Client()
    stream_id = client.request("GET", f"/dns-query/dev%2Dtok?dns={b64(QUERY)}")
    assert client.exchange() == [DohQuery(stream_id, QUERY, "dev-tok")]
    client.server.respond(stream_id, None)
    client.server.respond(stream_id, ANSWER)  # answered once only
    client.exchange()
    assert client.responses[stream_id].status == 400


def test_refusals_before_any_query_reaches_the_gateway() -> None:
    client = Client()
    cases = {
        client.request("GET", "/dns-query?dns=!!!"): 400,
        client.request("GET", "/dns-query"): 400,
        client.request("GET", f"/dns-query?dns={b64(b'short')}"): 400,
        client.request("POST", "/dns-query", QUERY, (("content-type", "text/plain"),)): 415,
        client.request("GET", f"/other?dns={b64(QUERY)}"): 404,
        client.request("GET", f"/dns-query/?dns={b64(QUERY)}"): 404,
        client.request("GET", f"/dns-query/a/b?dns={b64(QUERY)}"): 404,
        client.request("PUT", "/dns-query", QUERY): 405,
        client.request("GET", "/dns-query?dns=" + "A" * MAX_TARGET): 414,
    }
    assert client.exchange() == []
    for stream_id, status in cases.items():
        response = client.responses[stream_id]
        assert (response.status, response.ended) == (status, True), stream_id
        assert response.headers[b"content-type"] == b"application/problem+json"
        assert str(status).encode() in response.body
    put = next(s for s, status in cases.items() if status == 405)
    assert client.responses[put].headers[b"allow"] == b"GET, POST"
    assert client.terminated is None
    assert not client.server.closed


def _upload(client: Client, stream_id: int, size: int, *, end: bool = False) -> None:
    """`size` octets on `stream_id` as the flow-control windows allow."""
    while size > 0:
        chunk = min(client.h2.local_flow_control_window(stream_id), 16384, size)
        assert chunk > 0, "the server never returned flow-control window"
        client.h2.send_data(stream_id, b"\0" * chunk, end_stream=end and chunk == size)
        size -= chunk
        client.exchange()


def test_a_declared_body_past_a_dns_message_is_413_at_once_and_drained() -> None:
    client = Client()
    stream_id = client.h2.get_next_available_stream_id()
    headers = [(":method", "POST"), (":scheme", "https"), (":authority", "a")]
    headers += [(":path", "/dns-query"), ("content-type", MEDIA_TYPE)]
    client.h2.send_headers(stream_id, [*headers, ("content-length", "70000")])
    client.exchange()
    response = client.responses[stream_id]
    assert response.status == 413
    assert response.ended
    _upload(client, stream_id, 70000, end=True)  # read and dropped: no reset
    assert response.reset is None
    assert client.terminated is None

    endless = client.h2.get_next_available_stream_id()
    client.h2.send_headers(endless, [*headers, ("content-length", "900000")])
    client.exchange()
    with pytest.raises(StreamClosedError):
        _upload(client, endless, 900000)
    # RFC 9113 §8.1: past the drain, the upload is stopped without error.
    assert client.responses[endless].reset == ErrorCodes.NO_ERROR
    assert not client.server.busy


def test_a_streamed_body_past_a_dns_message_is_413_and_flow_control_is_returned() -> None:
    client = Client()
    stream_id = client.h2.get_next_available_stream_id()
    headers = [
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", "a"),
        (":path", "/dns-query"),
    ]
    client.h2.send_headers(stream_id, [*headers, ("content-type", MEDIA_TYPE)])
    sent = 0
    while sent <= 70000 and client.responses.get(stream_id) is None:
        size = min(client.h2.local_flow_control_window(stream_id), 16384)
        assert size > 0, "the server never returned flow-control window"
        client.h2.send_data(stream_id, b"\0" * size)
        sent += size
        client.exchange()
    assert client.responses[stream_id].status == 413
    assert client.exchange() == []
    assert not client.server.busy


def test_a_large_answer_waits_for_the_clients_window() -> None:
    client = Client(INITIAL_WINDOW_SIZE=100)
    client.exchange()
    stream_id = client.request("GET", f"/dns-query?dns={b64(QUERY)}")
    client.exchange()
    big = ANSWER + b"\0" * 3000
    # The client's acknowledgements reopen its window as each chunk arrives.
    client.server.respond(stream_id, big)
    client.exchange()
    assert client.responses[stream_id].body == big
    assert client.responses[stream_id].ended
    assert not client.server.busy


def test_a_reset_stream_is_forgotten() -> None:
    client = Client()
    stream_id = client.request("GET", f"/dns-query?dns={b64(QUERY)}")
    client.exchange()
    client.h2.reset_stream(stream_id, ErrorCodes.CANCEL)
    client.exchange()
    assert not client.server.busy
    client.server.respond(stream_id, ANSWER)  # the answer arriving late: nothing sent
    assert client.server.data_to_send() == b""


def test_garbage_closes_the_connection_with_goaway() -> None:
    client = Client()
    client.exchange()
    client.server.receive(b"\x00\x00\x04\x09\x00\x00\x00\x00\x01abcd")  # CONTINUATION alone
    assert client.server.closed
    client._events(client.server.data_to_send())
    assert client.terminated == ErrorCodes.PROTOCOL_ERROR
    assert client.server.receive(b"more") == []

    not_h2 = DohConnection()
    not_h2.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not_h2.closed


def test_more_streams_than_announced_close_the_connection() -> None:
    server = DohConnection(max_streams=2)
    client = Client(server)
    # Our SETTINGS never reach this client, so it does not know the bound.
    assert server.receive(client.h2.data_to_send()) == []
    for _ in range(2):
        client.request("GET", f"/dns-query?dns={b64(QUERY)}")
    assert len(server.receive(client.h2.data_to_send())) == 2
    assert not server.closed
    client.request("GET", f"/dns-query?dns={b64(QUERY)}")
    assert server.receive(client.h2.data_to_send()) == []
    assert server.closed


def test_headers_past_the_bound_close_the_connection() -> None:
    client = Client()
    client.request("GET", f"/dns-query?dns={b64(QUERY)}", headers=(("x-pad", "a" * 20000),))
    assert client.exchange() == []
    assert client.server.closed
    assert client.terminated is not None


def test_client_goaway_lets_answers_finish() -> None:
    client = Client()
    stream_id = client.request("GET", f"/dns-query?dns={b64(QUERY)}")
    client.exchange()
    client.h2.close_connection()
    client.exchange()
    assert client.server.goaway
    assert client.server.busy
    client.server.respond(stream_id, ANSWER)
    assert not client.server.busy


def _preface() -> bytes:
    return b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_arbitrary_bytes_after_the_preface_never_raise(chunks: list[bytes]) -> None:
    server = DohConnection()
    server.receive(_preface() + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # empty SETTINGS
    for chunk in chunks:
        for query in server.receive(chunk):
            server.respond(query.stream_id, ANSWER)
        server.data_to_send()
    server.close()
    server.data_to_send()


_header_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "HEAD", "get"]) | _header_text,
    path=st.sampled_from(["/dns-query", "/dns-query/t", "/", "/dns-query/"]),
    query=_header_text,
    content_type=st.none() | st.sampled_from([MEDIA_TYPE, "text/plain"]) | _header_text,
    body=st.none() | st.binary(max_size=600),
)
def test_every_request_gets_a_query_or_a_refusal(
    method: str, path: str, query: str, content_type: str | None, body: bytes | None
) -> None:
    client = Client()
    headers = () if content_type is None else (("content-type", content_type),)
    try:
        stream_id = client.request(method, f"{path}?{query}", body, headers)
    except Exception:
        return  # h2's client refuses to send it: not a request we can receive
    queries = client.exchange()
    if queries:
        assert [q.stream_id for q in queries] == [stream_id]
        client.server.respond(stream_id, ANSWER)
        client.exchange()
        assert client.responses[stream_id].status == 200
    elif client.server.closed:
        assert client.terminated is not None  # a malformed request: GOAWAY
    else:
        assert client.responses[stream_id].status in {400, 404, 405, 413, 414, 415}
    assert not client.server.busy


def _valid_exchange() -> bytes:
    client = H2Connection(H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    headers = [(":method", "POST"), (":scheme", "https"), (":authority", "a")]
    client.send_headers(1, [*headers, (":path", "/dns-query"), ("content-type", MEDIA_TYPE)])
    client.send_data(1, QUERY, end_stream=True)
    client.send_headers(
        3,
        [*headers[1:], (":method", "GET"), (":path", f"/dns-query?dns={b64(QUERY)}")],
        end_stream=True,
    )
    client.ping(b"12345678")
    return client.data_to_send()


VALID = _valid_exchange()


@settings(max_examples=500, deadline=None)
@given(
    flips=st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=4
    ),
    cuts=st.lists(st.integers(1, len(VALID)), max_size=4),
)
def test_a_mutated_valid_exchange_never_raises(
    flips: list[tuple[int, int]], cuts: list[int]
) -> None:
    data = bytearray(VALID)
    for at, value in flips:
        data[at] = value
    server = DohConnection()
    start = 0
    for end in [*sorted(set(cuts)), len(data)]:
        for query in server.receive(bytes(data[start:end])):
            server.respond(query.stream_id, ANSWER)
        start = end
        server.data_to_send()
    assert server.closed or not server.busy


def test_the_unmutated_exchange_is_two_queries() -> None:
    assert [q.stream_id for q in DohConnection().receive(VALID)] == [1, 3]
