"""Serving the API over HTTP/1.1 (uvicorn, h11), with guards for the connection itself.

uvicorn bounds idle kept-alive connections, but not the time a client takes to send a
request's headers, nor connections per client. `guarded_protocol` adds both:
- a header deadline: from the connection's start, and from the first byte of each
  further request, the headers must be complete within `header_timeout` seconds, or
  the connection is closed (the slow-headers attack holds sockets open forever);
- at most `max_connections_per_client` open connections per peer address; the one
  over is answered 503 and closed before anything of it is read. Trusted proxies carry
  many clients and are not counted.
`server_config` is the one place the API's uvicorn configuration is built.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ztsim.api.forwarded import Network

log = logging.getLogger("ztsim.api.server")
# h11's cap on a request's head (request line and headers) before it answers 400.
MAX_HEADER_BYTES = 16 * 1024
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
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


def guarded_protocol(options: ServeOptions) -> type[H11Protocol]:
    """An h11 protocol class with this server's own connection count per client."""
    open_per_client: Counter[str] = Counter()

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _counted: str | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
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

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
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

    return GuardedH11Protocol


def server_config(app: Any, options: ServeOptions) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        http=guarded_protocol(options),
        ws="none",
        # Forwarding headers are read by the app's edge, from trusted proxies only.
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=options.keep_alive,
        limit_concurrency=options.max_connections,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        log_level=options.log_level,
        access_log=False,  # request paths can carry DoH device tokens
    )
