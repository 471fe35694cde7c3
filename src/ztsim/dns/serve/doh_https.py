"""DNS over HTTPS (RFC 8484) on the gateway's own TLS listener, HTTP/2 only: the asyncio
side of `doh_h2`, for clients such as `curl --doh-url` and `kdig +https`.

`/dns-query` is authorised like UDP by the client's address (`Gateway.identify`: once per
connection, an unknown source waits for the change feed's next read); `/dns-query/<token>`
by the device token. The requester is looked up for every query, so a SIM suspended while
its connection stays open is refused from its next query. ALPN must select "h2" (RFC 9113
§3.2): anything else, a plain-HTTP client included, fails the handshake or is closed right
after it. A connection is closed after `idle_timeout` seconds without a new DNS query and
with nothing in flight; connections are bounded in total.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import cast

from ztsim.dns.policy.identity import Requester
from ztsim.dns.serve.doh_h2 import MAX_STREAMS, DohConnection, DohQuery
from ztsim.dns.serve.gateway import Gateway
from ztsim.dns.serve.tcp import tls_context

ALPN = "h2"  # RFC 9113 §3.2: HTTP/2 over TLS
IDLE_TIMEOUT = 30.0  # seconds; longer than DoT's: browsers keep a DoH connection for many lookups
HANDSHAKE_TIMEOUT = 10.0  # seconds for the TLS handshake
MAX_CONNECTIONS = 1024
log = logging.getLogger("ztsim.dns")


def doh_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """DoT's server context (TLS 1.2 or later) offering only HTTP/2, a context of its own:
    DoT must not offer ALPN "h2"."""
    context = tls_context(certfile, keyfile)
    context.set_alpn_protocols([ALPN])
    return context


class DohHttpsServer:
    def __init__(
        self,
        gateway: Gateway,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        max_streams: int = MAX_STREAMS,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.gateway = gateway
        self.idle_timeout = idle_timeout
        self.max_streams = max_streams
        self.max_connections = max_connections
        self.server: asyncio.Server | None = None
        self.connections: set[_DohProtocol] = set()

    def close(self) -> None:
        """Stop listening and close open connections (asyncio.Server.close keeps them)."""
        if self.server is not None:
            self.server.close()
        for connection in list(self.connections):
            connection.shut()


class _DohProtocol(asyncio.Protocol):
    def __init__(self, server: DohHttpsServer) -> None:
        self.server = server
        self.engine = DohConnection(max_streams=server.max_streams)
        self.transport: asyncio.Transport | None = None
        self.source: str | None = None
        # The one wait for the change feed's next read, for a source with no entry yet.
        self.looking: asyncio.Task[Requester | None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # With TLS, asyncio calls this once the handshake is done.
        self.transport = cast(asyncio.Transport, transport)
        tls = transport.get_extra_info("ssl_object")
        alpn = tls.selected_alpn_protocol() if isinstance(tls, ssl.SSLObject) else None
        if alpn != ALPN or len(self.server.connections) >= self.server.max_connections:
            self.transport.abort()
            return
        peer = transport.get_extra_info("peername")
        self.source = str(peer[0]) if peer else None
        self.server.connections.add(self)
        self._flush()
        self._arm()

    def data_received(self, data: bytes) -> None:
        queries = self.engine.receive(data)
        if queries:
            self._arm()
        for query in queries:
            self._start(query)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.idle is not None:
            self.idle.cancel()
        for task in self.tasks:
            task.cancel()
        if self.looking is not None:
            self.looking.cancel()

    def pause_writing(self) -> None:
        # A client that does not read its answers sends no more queries for a while.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def shut(self) -> None:
        """GOAWAY, then close once it is written."""
        self.engine.close()
        self._flush()

    def _start(self, query: DohQuery) -> None:
        who = self._known(query)
        waited = self.looking is not None and self.looking.done()
        if who is not None or query.token is not None or self.source is None or waited:
            source = None if query.token is not None else self.source  # a token: not a UE
            reply = self.server.gateway.answer_now(query.wire, who, udp=False, source=source)
            if reply is not None:
                self.engine.respond(query.stream_id, reply)
                return
        task = asyncio.get_running_loop().create_task(self._answer(query, who))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _known(self, query: DohQuery) -> Requester | None:
        identities = self.server.gateway.identities
        if query.token is not None:
            return identities.by_token(query.token)
        return None if self.source is None else identities.by_source(self.source)

    async def _answer(self, query: DohQuery, who: Requester | None) -> None:
        gateway = self.server.gateway
        try:
            if who is None and query.token is None and self.source is not None:
                if self.looking is None:
                    self.looking = asyncio.get_running_loop().create_task(
                        gateway.identify(self.source)
                    )
                # Shielded: one query's cancellation must not end the others' wait. Then
                # looked up afresh: the entry may have gone since the wait ended.
                await asyncio.shield(self.looking)
                who = gateway.identities.by_source(self.source)
            source = None if query.token is not None else self.source  # a token: not a UE
            reply = await gateway.answer(query.wire, who, udp=False, source=source)
        except Exception:
            log.exception("a DoH query failed")
            self.engine.fail(query.stream_id)
        else:
            self.engine.respond(query.stream_id, reply)
        self._flush()

    def _flush(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        data = self.engine.data_to_send()
        if data:
            transport.write(data)
        if self.engine.closed or (self.engine.goaway and not self.engine.busy):
            transport.close()

    def _arm(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        loop = asyncio.get_running_loop()
        self.idle = loop.call_later(self.server.idle_timeout, self._idle)

    def _idle(self) -> None:
        if self.engine.busy:
            self._arm()  # an upstream still answering: not idle
        else:
            self.shut()


async def serve_doh(
    gateway: Gateway,
    sock: socket.socket,
    tls: ssl.SSLContext,
    *,
    idle_timeout: float = IDLE_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> DohHttpsServer:
    """DoH on `sock` (bound, listening) with `tls` (see `doh_context`)."""
    _quiet_hpack()
    server = DohHttpsServer(gateway, idle_timeout=idle_timeout, max_connections=max_connections)
    loop = asyncio.get_running_loop()
    server.server = await loop.create_server(
        lambda: _DohProtocol(server), sock=sock, ssl=tls, ssl_handshake_timeout=HANDSHAKE_TIMEOUT
    )
    return server


def _quiet_hpack() -> None:
    """hpack logs every decoded header at DEBUG, `:path` with a device token (a credential)
    among them: its DEBUG records are never made while this listener runs."""
    hpack = logging.getLogger("hpack")
    if hpack.getEffectiveLevel() < logging.INFO:
        hpack.setLevel(logging.INFO)
