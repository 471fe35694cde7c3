"""A lean HTTP/1.1 load generator: an AUSF's connection pool without a client's costs.

An asyncio client (streams, a task per connection, a header parse per response) spent
25-30 us of CPU a request here, a quarter of what the Nudm endpoint it measured spent,
and on a two-core machine that CPU comes out of the server's share. This generator
builds every request before the clock starts and keeps each connection's work to one
recv(2), one search for the end of the head and one send(2) a response, driven by one
epoll(7) for all connections.

Keep-alive connections, one request in flight on each (as a pool of HTTP/1.1 clients
without pipelining); connection k sends its own list of requests in turn, from the
start again when it reaches the end. Responses must be framed by Content-Length (the
server under test is ours); anything else, a head past `MAX_HEAD`, or a connection the
server closes ends the run with `HttpLoadError`. Bounded by the number of requests and
by `seconds`; requests still unanswered `timeout` seconds after the last was sent are
counted in `LoadResult.unanswered`. `client_cpu` is this process's own CPU time over
the run, so a benchmark can show the generator was not the limit.
"""

from __future__ import annotations

import re
import select
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ztsim.errors import ZtsimError

__all__ = ["HttpLoad", "HttpLoadError", "LoadResult", "ResponseFramer"]

MAX_HEAD = 16384  # octets; the heads the generator expects are a few hundred
_END_OF_HEAD = b"\r\n\r\n"
# RFC 9112 §4: HTTP-version SP 3DIGIT; RFC 9110 §5.1: field names are case-insensitive.
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9])")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*([0-9]{1,9})[ \t]*\r", re.I)
_RECV = 65536


class HttpLoadError(ZtsimError):
    """The server's responses cannot be followed (framing, closed connection)."""


class ResponseFramer:
    """Splits one connection's byte stream into its responses' status codes. Sans-I/O."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[int]:
        """The status codes of the responses that `data` completes, in order."""
        buffer = self._buffer
        buffer += data
        statuses: list[int] = []
        while True:
            end = buffer.find(_END_OF_HEAD)
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    raise HttpLoadError("a response head longer than MAX_HEAD")
                return statuses
            if end > MAX_HEAD:
                raise HttpLoadError("a response head longer than MAX_HEAD")
            status = _STATUS_LINE.match(buffer, 0, end)
            if status is None:
                raise HttpLoadError("a response without an HTTP/1.x status line")
            length = _CONTENT_LENGTH.search(buffer, 0, end + 2)
            if length is None:
                raise HttpLoadError("a response without Content-Length")
            total = end + len(_END_OF_HEAD) + int(length.group(1))
            if len(buffer) < total:
                return statuses
            statuses.append(int(status.group(1)))  # before the buffer it points into moves
            del buffer[:total]

    @property
    def pending(self) -> int:
        """Octets received of a response not yet complete."""
        return len(self._buffer)


@dataclass(frozen=True)
class LoadResult:
    """What one run did. `ok` counts 2xx responses; `statuses` every status seen."""

    sent: int
    answered: int
    ok: int
    statuses: dict[int, int]
    elapsed: float  # seconds, from the first request to the last response
    client_cpu: float  # seconds of this process's CPU over the run

    @property
    def unanswered(self) -> int:
        return self.sent - self.answered

    @property
    def rps(self) -> float:
        return self.answered / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def client_cpu_us(self) -> float:
        """The generator's CPU microseconds per response."""
        return self.client_cpu / self.answered * 1e6 if self.answered else 0.0


class _Connection:
    __slots__ = ("busy", "framer", "next", "requests", "sock")

    def __init__(self, sock: socket.socket, requests: Sequence[bytes]) -> None:
        self.sock = sock
        self.requests = requests
        self.framer = ResponseFramer()
        self.next = 0
        self.busy = False  # a request sent and not yet answered

    def send(self) -> None:
        # One request in flight and a few hundred octets: the socket's buffer is empty.
        self.sock.sendall(self.requests[self.next])
        self.next = (self.next + 1) % len(self.requests)
        self.busy = True


class HttpLoad:
    """`len(requests)` keep-alive connections to `address`; connection k sends
    `requests[k]` in turn, one at a time."""

    def __init__(
        self,
        address: tuple[str, int],
        requests: Sequence[Sequence[bytes]],
        *,
        timeout: float = 5.0,
    ) -> None:
        if not requests or any(not r for r in requests):
            raise ValueError("each connection needs at least one request")
        self.address = address
        self.requests = requests
        self.timeout = timeout

    def run(self, count: int, *, seconds: float) -> LoadResult:
        """Send at most `count` requests, none after `seconds`; then wait (at most
        `timeout`) for the responses still due."""
        if count < 1 or seconds <= 0:
            raise ValueError("count and seconds must be positive")
        connections: dict[int, _Connection] = {}
        poller = select.epoll()
        try:
            for requests in self.requests:
                sock = socket.create_connection(self.address, timeout=self.timeout)
                # Blocking: a socket with a timeout polls before each recv and send.
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                connections[sock.fileno()] = _Connection(sock, requests)
                poller.register(sock.fileno(), select.EPOLLIN)
            return self._drive(poller, connections, count, seconds)
        finally:
            poller.close()
            for connection in connections.values():
                connection.sock.close()

    def _drive(
        self, poller: select.epoll, connections: dict[int, _Connection], count: int, seconds: float
    ) -> LoadResult:
        clock = time.perf_counter
        statuses: dict[int, int] = {}
        sent = answered = ok = 0
        cpu = time.process_time()
        start = last = clock()
        stop = start + seconds
        for connection in connections.values():
            if sent < count:
                connection.send()
                sent += 1
        in_flight = sent
        give_up = stop + self.timeout
        while in_flight:
            now = clock()
            if now >= give_up:
                break
            for fd, _ in poller.poll(min(give_up - now, self.timeout)):
                connection = connections[fd]
                data = connection.sock.recv(_RECV)
                if not data:
                    raise HttpLoadError("the server closed a connection")
                done = connection.framer.feed(data)
                if not done:
                    continue
                if len(done) > 1 or not connection.busy:
                    raise HttpLoadError("more responses than requests on a connection")
                connection.busy = False
                last = clock()
                status = done[0]
                statuses[status] = statuses.get(status, 0) + 1
                ok += 200 <= status < 300
                answered += 1
                in_flight -= 1
                if sent < count and last < stop:
                    connection.send()
                    sent += 1
                    in_flight += 1
        return LoadResult(
            sent=sent,
            answered=answered,
            ok=ok,
            statuses=statuses,
            elapsed=last - start,
            client_cpu=time.process_time() - cpu,
        )
