"""Serving the API over HTTP/1.1 (uvicorn, httptools), with guards for the connection itself.

uvicorn bounds idle kept-alive connections, but not the time a client takes to send a
request's headers, their size (with httptools), nor connections per client.
`guarded_protocol` adds them:
- a header deadline: from the connection's start, and from the first byte of each
  further request, the headers must be complete within `header_timeout` seconds, or
  the connection is closed (the slow-headers attack holds sockets open forever);
- a bound on a request's head: past MAX_HEADER_BYTES without its end, 431 and close;
- at most `max_connections_per_client` open connections per peer address; the one
  over is answered 503 and closed before anything of it is read. Trusted proxies carry
  many clients and are not counted.
httptools (llhttp, in C) rather than h11: parsing was a third of a small request's CPU
with h11. `server_config` is the one place the API's uvicorn configuration is built.

A connection asks the app's Nudm lane (`ueau_lane`) about a POST to the UEAU path at
its head, keeps its body from uvicorn, and once the request is whole either lets the
lane answer it (a cycle of its own stands in uvicorn's place meanwhile, so that
pipelined requests queue behind it and a shutdown closes after it) or hands it to
uvicorn as the parser gave it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, partial
from http import HTTPStatus
from ipaddress import ip_address
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ztsim.api.forwarded import Network
from ztsim.api.ueau_lane import Answer, UeauLane

log = logging.getLogger("ztsim.api.server")
# A request's head (request line and headers) past this many octets is refused (431).
MAX_HEADER_BYTES = 16 * 1024
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
)
_HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
)


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    header_timeout: float = 10.0
    max_connections_per_client: int = 64
    max_connections: int = 2048
    keep_alive: int = 5
    trusted_proxies: tuple[Network, ...] = ()
    log_level: str = "warning"


def _trusted(host: str, trusted: Sequence[Network]) -> bool:
    try:
        address = ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in trusted)


class CoalescedWrites(asyncio.Transport):
    """The connection's transport, with the writes of one turn of the event loop sent in
    one call: uvicorn writes a response's head and its body separately, and each send
    wakes the client (on loopback, a send cost more than a small handler). Closing sends
    what waits first. Everything else is the transport's own."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._waiting: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._waiting:
            self._loop.call_soon(self.flush)
        self._waiting.append(bytes(data))

    def write_whole(self, data: bytes) -> None:
        """A whole response in one piece: sent at once (after what waits, if anything
        does), without a turn of the loop for it."""
        if self._waiting:
            self._waiting.append(data)
        elif not self._transport.is_closing():
            self._transport.write(data)

    def flush(self) -> None:
        waiting, self._waiting = self._waiting, []
        if waiting and not self._transport.is_closing():
            self._transport.write(b"".join(waiting))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._waiting.clear()
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._waiting))

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()


class _LaneCycle:
    """What uvicorn's connection asks of its current request while the lane answers it:
    later pipelined requests queue behind it, and a shutdown asks it to close after."""

    __slots__ = ("disconnected", "keep_alive", "message_event", "response_complete")

    def __init__(self) -> None:
        self.response_complete = False
        self.keep_alive = True
        self.disconnected = False
        self.message_event = _Unawaited()


class _Unawaited:
    """uvicorn sets the request's event when the connection is lost; nobody waits here."""

    def set(self) -> None:
        pass


@cache
def _status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode("ascii"))


def guarded_protocol(
    options: ServeOptions, lane: UeauLane | None = None
) -> type[HttpToolsProtocol]:
    """An HTTP/1.1 protocol class with this server's own connection count per client;
    with `lane`, the requests it takes are answered without ASGI (see `ueau_lane`)."""
    open_per_client: Counter[str] = Counter()

    class GuardedHttpProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _counted: str | None = None
        _in_head = False  # the parser is inside a request's head
        _head_bytes = 0  # octets read while the current head was unfinished
        _head_size = 0  # the current head's request line and headers, as parsed
        _head_refused = False
        _lane_body: list[bytes] | None = None  # a request's body, kept for the lane
        _writes: CoalescedWrites

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._writes = CoalescedWrites(transport, self.loop)
            self.transport = self._writes
            host = self.client[0] if self.client else ""
            if not _trusted(host, options.trusted_proxies):
                self._counted = host
                open_per_client[host] += 1
                if open_per_client[host] > options.max_connections_per_client:
                    log.warning("%s has too many connections open; refusing one", host)
                    transport.write(_BUSY)
                    transport.close()
                    return
            self._arm()

        def on_message_begin(self) -> None:
            self._in_head = True
            self._head_size = self._head_bytes = 0
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._head_size += len(url)
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._head_size += len(name) + len(value) + 4
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            if self._head_size > MAX_HEADER_BYTES:
                # A head that arrived whole in one read: the parser stops here, and
                # uvicorn's answer to a parser error becomes ours (send_400_response).
                self._head_refused = True
                raise httptools.HttpParserError("request head too large")
            if lane is not None and self._lane_may_take():
                self._lane_body = []  # uvicorn hears of it only if the lane hands it back
                return
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            kept = self._lane_body
            if kept is None:
                super().on_body(body)
                return
            kept.append(body)
            assert lane is not None
            if sum(map(len, kept)) > lane.body_limit:
                self._hand_back()  # the edge answers 413

        def on_message_complete(self) -> None:
            kept = self._lane_body
            if kept is None:
                super().on_message_complete()
                return
            assert lane is not None
            assert self.client is not None
            body = b"".join(kept)
            # The parser's view of this request (keep-alive) holds until this returns.
            taken = (
                lane.take(self.url, self.headers, body, self.client[0])
                if self.parser.should_keep_alive()
                else None
            )
            if taken is None:
                self._hand_back()
                super().on_message_complete()
                return
            self._lane_body = None
            cycle = _LaneCycle()
            self.cycle = cycle  # type: ignore[assignment]
            lane.start(taken, partial(self._lane_reply, cycle))

        def _lane_may_take(self) -> bool:
            assert lane is not None
            parser = self.parser
            limit = self.limit_concurrency
            return (
                (self.cycle is None or self.cycle.response_complete)
                and not self.pipeline
                and not self.expect_100_continue
                and parser.get_http_version() == "1.1"
                and not parser.should_upgrade()
                and (limit is None or max(len(self.connections), len(self.tasks)) < limit)
                and lane.wants(
                    parser.get_method(), self.url, self.client[0] if self.client else None
                )
            )

        def _hand_back(self) -> None:
            """The kept request to uvicorn, as the parser would have told it."""
            kept = self._lane_body
            self._lane_body = None
            super().on_headers_complete()
            if kept:
                super().on_body(b"".join(kept))

        def _lane_reply(self, cycle: _LaneCycle, answer: Answer) -> None:
            if self.transport.is_closing():
                cycle.response_complete = True
                return
            wire = [_status_line(answer.status)]
            for name, value in (*self.server_state.default_headers, *answer.headers):
                wire += [name, b": ", value, b"\r\n"]
            if not cycle.keep_alive:
                wire.append(b"connection: close\r\n")
            wire += [b"\r\n", answer.body]
            self._writes.write_whole(b"".join(wire))
            cycle.response_complete = True
            if not cycle.keep_alive:
                self.transport.close()
            self.on_response_complete()

        def send_400_response(self, msg: str) -> None:
            if self._head_refused:
                self._refuse_head()
            else:
                super().send_400_response(msg)

        def _refuse_head(self) -> None:
            log.info("closing a connection from %s: request head too large", self.client)
            self._disarm()
            if not self.transport.is_closing():
                self.transport.write(_HEAD_TOO_LARGE)
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            was_in_head = self._in_head
            super().data_received(data)
            if was_in_head and self._in_head:
                # All of this read went into one unfinished head (the read that began
                # it is not counted: a head is bounded by one read more than the limit).
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEADER_BYTES:
                    self._refuse_head()
                    return
            if self._waiting_for_headers():
                self._arm()
            else:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._counted is not None:
                open_per_client[self._counted] -= 1
                if open_per_client[self._counted] <= 0:
                    del open_per_client[self._counted]
                self._counted = None
            super().connection_lost(exc)

        def _waiting_for_headers(self) -> bool:
            # No request yet, or the last one answered: the next one's head is due.
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            if self._deadline is None and not self.transport.is_closing():
                self._deadline = self.loop.call_later(options.header_timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self._waiting_for_headers() and not self.transport.is_closing():
                log.info("closing a connection from %s: no request headers in time", self.client)
                self.transport.close()

    return GuardedHttpProtocol


def server_config(app: Any, options: ServeOptions) -> uvicorn.Config:
    """An app made by `create_app` brings its Nudm lane (`ueau_lane`)."""
    lane: UeauLane | None = getattr(app, "ueau_lane", None)
    return uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        http=guarded_protocol(options, lane),
        # libuv's loop, not asyncio's: its polling, timers and socket writes are C, about a
        # seventh of a Nudm vector request's instructions (callgrind, bench/aka.py's load).
        loop="uvloop",
        ws="none",
        # Forwarding headers are read by the app's edge, from trusted proxies only.
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=options.keep_alive,
        limit_concurrency=options.max_connections,
        log_level=options.log_level,
        access_log=False,  # request paths can carry DoH device tokens
    )
