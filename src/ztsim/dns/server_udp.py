"""DNS over UDP (RFC 1035 §4.2.1): a thin asyncio adapter around `Gateway`.

Answers that need no upstream are sent from `datagram_received` itself, with
no task; forwarded queries get one task each.
"""

from __future__ import annotations

import asyncio
import socket
from typing import cast

from ztsim.dns.engine import Answer, Forward
from ztsim.dns.gateway import Gateway


class UdpServer(asyncio.DatagramProtocol):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        gateway = self.gateway
        who = gateway.identities.by_source(str(addr[0]))
        step = gateway.engine.handle(data, who, gateway.clock(), udp=True)
        if step is None:
            return
        if isinstance(step, Answer):
            if self.transport is not None:
                self.transport.sendto(step.wire, addr)
            return
        task = asyncio.get_running_loop().create_task(self._forward(step, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(self, step: Forward, addr: tuple[str | int, ...]) -> None:
        response = await self.gateway.upstreams.query(step.upstream_query)
        reply = self.gateway.engine.resolved(step, response, self.gateway.clock())
        if self.transport is not None:
            self.transport.sendto(reply, addr)


def udp_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound UDP socket; `reuse_port` lets several worker processes share the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


async def serve_udp(gateway: Gateway, sock: socket.socket) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: UdpServer(gateway), sock=sock)
    return transport
