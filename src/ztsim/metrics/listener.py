"""A scrape endpoint for the processes without the API (`serve radius`, `serve dns`): a
tiny HTTP/1.1 server on the process's event loop that answers `GET /metrics` and
nothing else.

It binds where it is told (loopback by default: the node's settings) and reads only
request heads: at most `MAX_HEAD` octets (431 past that), no bodies (a request that
announces one is answered 400 and the connection closed, so nothing unread is ever
taken for the next request). Persistent connections are kept as RFC 9112 §9.3 says,
closed after `idle_seconds` without a request, and at most `max_connections` are open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ztsim.metrics.exposition import CONTENT_TYPE

log = logging.getLogger("ztsim.metrics")

PATH = "/metrics"
MAX_HEAD = 8192  # octets of request line and headers; Prometheus sends a few hundred
IDLE_SECONDS = 10.0
MAX_CONNECTIONS = 16
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


class _Head:
    """What a request head says that matters here."""

    def __init__(self, raw: bytes) -> None:
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        self.valid = len(parts) == 3 and parts[2] in ("HTTP/1.1", "HTTP/1.0")
        self.method, target, version = parts if self.valid else ("", "", "")
        self.path = target.split("?", 1)[0]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not line:
                continue
            if not colon or name != name.strip():
                self.valid = False  # RFC 9112 §5.1: no whitespace before the colon
                continue
            headers[name.lower()] = value.strip().lower()
        length = headers.get("content-length", "0")
        self.has_body = "transfer-encoding" in headers or length != "0"
        # RFC 9112 §9.3: HTTP/1.1 persists unless told otherwise; 1.0 does not here.
        self.keep_alive = version == "HTTP/1.1" and "close" not in headers.get("connection", "")


def _response(status: int, body: bytes, content_type: str, *, close: bool) -> bytes:
    head = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "X-Content-Type-Options: nosniff",
    ]
    if status == 405:
        head.append("Allow: GET")
    if close:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class MetricsListener:
    """`await start(host, port)` (port 0 picks one), `await stop()`. `render` makes the
    body of each scrape (the registry's samples in the text format)."""

    def __init__(
        self,
        render: Callable[[], bytes],
        *,
        idle_seconds: float = IDLE_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._render = render
        self.idle_seconds = idle_seconds
        self.max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.close()
        # Not cancelled: each handler ends on its closed connection (Python 3.11's streams
        # log a cancelled handler as an error).
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=self.idle_seconds)
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._writers) >= self.max_connections:
            writer.close()
            return
        self._writers.add(writer)
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, TimeoutError):
            pass
        finally:
            self._writers.discard(writer)
            if handler is not None:
                self._handlers.discard(handler)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; whether the connection stays open for another."""
        try:
            async with asyncio.timeout(self.idle_seconds):
                raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            await self._send(writer, _response(431, b"", "text/plain", close=True))
            return False
        except (TimeoutError, asyncio.IncompleteReadError):
            return False
        head = _Head(raw[:-4])
        if not head.valid or head.has_body:
            await self._send(writer, _response(400, b"", "text/plain", close=True))
            return False
        status, body, content_type = self._answer(head)
        await self._send(writer, _response(status, body, content_type, close=not head.keep_alive))
        return head.keep_alive

    def _answer(self, head: _Head) -> tuple[int, bytes, str]:
        if head.path != PATH:
            return 404, b"", "text/plain"
        if head.method != "GET":
            return 405, b"", "text/plain"
        try:
            return 200, self._render(), CONTENT_TYPE
        except Exception:
            log.exception("rendering the metrics failed")
            return 500, b"", "text/plain"

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        async with asyncio.timeout(self.idle_seconds):
            await writer.drain()
