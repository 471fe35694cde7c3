"""DNS over TCP (RFC 1035 §4.2.2, RFC 7766): length-prefixed messages, pipelined.

Each query on a connection is answered as soon as it is ready, so answers may
come back out of order (RFC 7766 §6.2.1.1: clients match them by ID). An idle
connection is closed after `idle_timeout` (RFC 7766 §6.2.3), and at most
`max_inflight` queries per connection wait for upstreams at once.

The requester is looked up for every query, not once per connection: a SIM suspended
while its connection stays open is refused from its next query. A connection from a
source with no entry waits, once, for the change feed's next read (`Gateway.identify`):
a session committed just before the connection is then known.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct

from ztsim.dns.policy.identity import Requester
from ztsim.dns.serve.gateway import Gateway

_LENGTH = struct.Struct("!H")
DEFAULT_IDLE_TIMEOUT = 10.0  # RFC 7766 §6.2.3: seconds, for a server that is not overloaded
DEFAULT_MAX_INFLIGHT = 64


class TcpServer:
    def __init__(
        self,
        gateway: Gateway,
        *,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
    ) -> None:
        self.gateway = gateway
        self.idle_timeout = idle_timeout
        self.max_inflight = max_inflight
        self.server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def close(self) -> None:
        """Stop listening and close open connections (asyncio.Server.close keeps them)."""
        if self.server is not None:
            self.server.close()
        for writer in list(self._writers):
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if peer else None
        looked_again = False
        slots = asyncio.Semaphore(self.max_inflight)
        tasks: set[asyncio.Task[None]] = set()
        self._writers.add(writer)
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout):
                        (length,) = _LENGTH.unpack(await reader.readexactly(2))
                        wire = await reader.readexactly(length)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    break
                who = None if source is None else self.gateway.identities.by_source(source)
                if who is None and source is not None and not looked_again:
                    looked_again = True
                    who = await self.gateway.identify(source)
                reply = self.gateway.answer_now(wire, who, udp=False, source=source)
                if reply is not None:
                    writer.write(_LENGTH.pack(len(reply)) + reply)
                    continue
                await slots.acquire()
                task = asyncio.create_task(self._answer(wire, who, source, writer, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(tasks, timeout=self.idle_timeout)
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _answer(
        self,
        wire: bytes,
        who: Requester | None,
        source: str | None,
        writer: asyncio.StreamWriter,
        slots: asyncio.Semaphore,
    ) -> None:
        try:
            reply = await self.gateway.answer(wire, who, udp=False, source=source)
            if reply is not None and not writer.is_closing():
                writer.write(_LENGTH.pack(len(reply)) + reply)
        finally:
            slots.release()


def tcp_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve_tcp(
    gateway: Gateway, sock: socket.socket, tls: ssl.SSLContext | None = None
) -> TcpServer:
    """DNS over TCP, or over TLS (RFC 7858: the same framing inside TLS) with `tls`."""
    server = TcpServer(gateway)
    server.server = await asyncio.start_server(server.handle, sock=sock, ssl=tls)
    return server


def tls_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """A server context for DoT: TLS 1.2 or later (RFC 8310 §8.1 / RFC 7525)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return context
