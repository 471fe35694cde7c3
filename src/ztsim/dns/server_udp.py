"""DNS over UDP (RFC 1035 §4.2.1): a thin adapter around `Gateway` on an asyncio loop.

The hot path skips asyncio's datagram transport: a reader callback drains up to
`BATCH` datagrams per wake-up straight from the non-blocking socket and answers
those that need no upstream at once (most do: blocks, cache hits). Only
forwarded queries become tasks, at most `max_pending` at a time (beyond that,
queries are dropped and the client retries, as with any overloaded server).
"""

from __future__ import annotations

import asyncio
import socket

from ztsim.dns.engine import Answer, Forward
from ztsim.dns.gateway import Gateway

BATCH = 256  # datagrams per wake-up: amortises the selector, bounds the others' wait
MAX_DATAGRAM = 65535
DEFAULT_MAX_PENDING = 10_000


class UdpServer:
    def __init__(
        self, gateway: Gateway, sock: socket.socket, max_pending: int = DEFAULT_MAX_PENDING
    ) -> None:
        self.gateway = gateway
        self.sock = sock
        self.max_pending = max_pending
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dropped = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
        for task in self._tasks:
            task.cancel()
        self.sock.close()

    def _readable(self) -> None:
        gateway, sock = self.gateway, self.sock
        handle, by_source, now = (
            gateway.engine.handle,
            gateway.identities.by_source,
            gateway.clock(),
        )
        for _ in range(BATCH):
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # e.g. an ICMP error queued for an earlier send
            step = handle(data, by_source(addr[0]), now, udp=True)
            if step is None:
                continue
            if isinstance(step, Answer):
                self._send(step.wire, addr)
            elif len(self._tasks) < self.max_pending:
                task = asyncio.get_running_loop().create_task(self._forward(step, addr))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                self.dropped += 1

    def _send(self, wire: bytes, addr: tuple[str, int]) -> None:
        try:
            self.sock.sendto(wire, addr)
        except OSError:
            self.dropped += 1  # a full send buffer: UDP gives no guarantee, the client retries

    async def _forward(self, step: Forward, addr: tuple[str, int]) -> None:
        response = await self.gateway.upstreams.query(step.upstream_query)
        self._send(self.gateway.engine.resolved(step, response, self.gateway.clock()), addr)


def udp_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound non-blocking UDP socket; `reuse_port` lets worker processes share the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


async def serve_udp(gateway: Gateway, sock: socket.socket) -> UdpServer:
    server = UdpServer(gateway, sock)
    server.start()
    return server
