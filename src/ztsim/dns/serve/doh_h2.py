"""One HTTP/2 connection of the DoH listener (RFC 8484 over RFC 9113), sans I/O: bytes in,
DNS queries out; answers in, bytes out. The asyncio side is `doh_https`.

Routing and the checks that need no gateway happen here, so every refusal is decided
before a query reaches the engine: 404 for other paths, 405 for other methods, 414 for a
request target past `MAX_TARGET`, 413 for a body past a DNS message's 65,535 octets, 415
for a POST of another media type, 400 for a message that cannot be extracted. Anything
that is not valid HTTP/2 (h2 raises a `ProtocolError`) closes this connection with GOAWAY,
and nothing else: a client opening more streams than our SETTINGS allow (`max_streams`,
announced before its first frame is read) or sending headers past `MAX_HEADER_LIST` too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError, StreamClosedError
from h2.settings import SettingCodes, Settings

from ztsim.dns.serve.doh import (
    MAX_MESSAGE,
    MEDIA_TYPE,
    DohInputError,
    max_age,
    message_from_get,
    message_from_post,
)

PATH = "/dns-query"
MAX_STREAMS = 100  # RFC 9113 §6.5.2: SETTINGS_MAX_CONCURRENT_STREAMS "no smaller than 100"
MAX_HEADER_LIST = 16384  # octets of decoded headers; a DoH request needs a few hundred
MAX_TARGET = 8000  # RFC 9110 §4.1: request targets of at least 8000 octets are supported
_ALLOWED = "GET, POST"
DRAIN = 2 * MAX_MESSAGE  # octets of an upload read after its early answer (413, 415...)


@dataclass(frozen=True, slots=True)
class DohQuery:
    """A DNS query to answer on `stream_id`; `token` None: the requester is the client's
    address (`/dns-query`), else the device token of `/dns-query/<token>`."""

    stream_id: int
    wire: bytes
    token: str | None


@dataclass(slots=True)
class _Request:
    method: str
    token: str | None
    query: str
    content_type: str | None
    body: bytearray = field(default_factory=bytearray)


class DohConnection:
    """The server side of one connection. Feed it `receive`, send what `data_to_send`
    returns, and give each `DohQuery` its answer with `respond`."""

    def __init__(self, *, max_streams: int = MAX_STREAMS) -> None:
        self.closed = False  # after a protocol error: send what is left, then close
        self.goaway = False  # the client said it opens no more streams
        self._h2 = H2Connection(H2Configuration(client_side=False, header_encoding=None))
        # Set before the preface, so they bind from the first frame, not after an ACK.
        self._h2.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: max_streams,
                SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
            },
        )
        self._h2.decoder.max_header_list_size = MAX_HEADER_LIST
        self._h2.initiate_connection()
        self._receiving: dict[int, _Request] = {}
        self._answering: set[int] = set()
        self._unsent: dict[int, bytes] = {}  # response bodies waiting for flow-control window
        self._draining: dict[int, int] = {}  # answered streams still uploading: octets read

    @property
    def busy(self) -> bool:
        """Queries out for answers, or answers not fully sent."""
        return bool(self._answering or self._unsent)

    def data_to_send(self) -> bytes:
        return self._h2.data_to_send()

    def receive(self, data: bytes) -> list[DohQuery]:
        """The queries completed by `data`; refusals are answered here."""
        if self.closed:
            return []
        try:
            events = self._h2.receive_data(data)
        except ProtocolError:
            self.closed = True  # h2 has queued the GOAWAY
            self._receiving.clear()
            return []
        queries: list[DohQuery] = []
        for event in events:
            query = self._event(event)
            if query is not None:
                queries.append(query)
        return queries

    def _event(self, event: Event) -> DohQuery | None:
        if isinstance(event, RequestReceived):
            self._request(event.stream_id, event.headers)
            if event.stream_ended is not None:
                return self._ended(event.stream_id)
        elif isinstance(event, DataReceived):
            self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            request = self._receiving.get(event.stream_id)
            if request is not None:
                request.body += event.data
                if len(request.body) > MAX_MESSAGE:
                    self._refuse(event.stream_id, 413, "DNS message too large")
            elif event.stream_id in self._draining:
                self._drain(event.stream_id, len(event.data))
            if event.stream_ended is not None:
                return self._ended(event.stream_id)
        elif isinstance(event, StreamEnded):
            return self._ended(event.stream_id)
        elif isinstance(event, StreamReset):
            self._forget(event.stream_id)
        elif isinstance(event, WindowUpdated):
            for stream_id in list(self._unsent):
                self._flush(stream_id)
        elif isinstance(event, ConnectionTerminated):
            self.goaway = True
        return None

    def _request(self, stream_id: int, headers: list[tuple[bytes, bytes]]) -> None:
        fields: dict[bytes, bytes] = {}
        for name, value in headers:
            fields.setdefault(name, value)
        method = fields.get(b":method", b"").decode("latin-1")
        # RFC 9110 §9.3.2: a response to HEAD has no content, a refusal included.
        head = method == "HEAD"
        target = fields.get(b":path", b"")
        if len(target) > MAX_TARGET:
            self._refuse(stream_id, 414, "request target too long", head=head)
            return
        path, _, query = target.decode("latin-1").partition("?")
        token = None if path == PATH else _token(path)
        if path != PATH and token is None:
            self._refuse(stream_id, 404, "not found", head=head)
            return
        if method not in ("GET", "POST"):
            allow = ((b"allow", _ALLOWED.encode()),)
            self._refuse(stream_id, 405, "method not allowed", allow, head=head)
            return
        content_type = fields.get(b"content-type")
        length = fields.get(b"content-length", b"0")
        if method == "POST" and length.isdigit() and int(length) > MAX_MESSAGE:
            self._refuse(stream_id, 413, "DNS message too large")
            return
        self._receiving[stream_id] = _Request(
            method, token, query, None if content_type is None else content_type.decode("latin-1")
        )

    def _ended(self, stream_id: int) -> DohQuery | None:
        self._draining.pop(stream_id, None)
        request = self._receiving.pop(stream_id, None)
        if request is None:
            return None
        try:
            if request.method == "GET":
                values = parse_qs(request.query, keep_blank_values=True).get("dns")
                wire = message_from_get(values[0] if values else None)
            else:
                wire = message_from_post(request.content_type, bytes(request.body))
        except DohInputError as exc:
            status = 415 if "content type" in str(exc) else 400
            self._refuse(stream_id, status, str(exc))
            return None
        self._answering.add(stream_id)
        return DohQuery(stream_id, wire, request.token)

    def respond(self, stream_id: int, answer: bytes | None) -> None:
        """The gateway's answer to a query handed out by `receive`; None: it was not a
        DNS query (400). A stream the client reset meanwhile is skipped."""
        if stream_id not in self._answering:
            return
        self._answering.discard(stream_id)
        if answer is None:
            self._send(stream_id, 400, _problem(400, "not a DNS query"), _PROBLEM)
            return
        headers = ((b"cache-control", f"max-age={max_age(answer)}".encode()),)
        self._send(stream_id, 200, answer, MEDIA_TYPE.encode(), headers)

    def fail(self, stream_id: int) -> None:
        """The gateway failed on a query handed out by `receive`: 500."""
        if stream_id in self._answering:
            self._answering.discard(stream_id)
            self._send(stream_id, 500, _problem(500, "the DNS gateway failed"), _PROBLEM)

    def close(self) -> None:
        """A graceful GOAWAY (idle, or the server stopping)."""
        if not self.closed:
            self.closed = True
            self._h2.close_connection(ErrorCodes.NO_ERROR)

    def _refuse(
        self,
        stream_id: int,
        status: int,
        detail: str,
        extra: tuple[tuple[bytes, bytes], ...] = (),
        *,
        head: bool = False,
    ) -> None:
        self._receiving.pop(stream_id, None)
        body = _problem(status, detail)
        self._send(stream_id, status, body, _PROBLEM, extra, send_body=not head)

    def _send(
        self,
        stream_id: int,
        status: int,
        body: bytes,
        media_type: bytes,
        extra: tuple[tuple[bytes, bytes], ...] = (),
        *,
        send_body: bool = True,
    ) -> None:
        headers = [
            (b":status", str(status).encode()),
            (b"content-type", media_type),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        try:
            self._h2.send_headers(stream_id, headers)
        except (StreamClosedError, ProtocolError):
            return  # reset by the client meanwhile, or the connection is ending
        self._unsent[stream_id] = body if send_body else b""
        self._flush(stream_id)

    def _flush(self, stream_id: int) -> None:
        body = self._unsent.pop(stream_id)
        try:
            while True:
                window = self._h2.local_flow_control_window(stream_id)
                size = min(window, self._h2.max_outbound_frame_size, len(body))
                if size <= 0 and body:
                    self._unsent[stream_id] = body  # WindowUpdated sends the rest
                    return
                self._h2.send_data(stream_id, body[:size], end_stream=size == len(body))
                body = body[size:]
                if not body:
                    break
            stream = self._h2.streams.get(stream_id)
            if stream is not None and not stream.closed:
                self._draining[stream_id] = 0  # answered before the request ended
        except (StreamClosedError, ProtocolError):
            return

    def _drain(self, stream_id: int, size: int) -> None:
        """The rest of an upload answered early is read and dropped, up to `DRAIN` octets,
        then stopped with RST_STREAM NO_ERROR (RFC 9113 §8.1). Not at once: curl 7.88 takes
        such a reset for an error and drops the response it has."""
        drained = self._draining[stream_id] + size
        if drained <= DRAIN:
            self._draining[stream_id] = drained
            return
        del self._draining[stream_id]
        self._h2.reset_stream(stream_id, ErrorCodes.NO_ERROR)

    def _forget(self, stream_id: int) -> None:
        self._draining.pop(stream_id, None)
        self._receiving.pop(stream_id, None)
        self._answering.discard(stream_id)
        self._unsent.pop(stream_id, None)


_PROBLEM = b"application/problem+json"


def _problem(status: int, detail: str) -> bytes:
    return json.dumps({"type": "about:blank", "status": status, "detail": detail}).encode()


def _token(path: str) -> str | None:
    """The device token of `/dns-query/<token>` (one non-empty segment), else None."""
    rest = path.removeprefix(PATH + "/")
    if rest == path or not rest or "/" in rest:
        return None
    return unquote(rest)
