"""DNS over UDP (RFC 1035 §4.2.1): a thin user of `ztsim.datagram` around `Gateway`.

The serving thread asks the sans-I/O engine and sends the answers it can give at
once: no event-loop round trip per query, which under load cost more than the query
itself. Only queries that need an upstream cross over to the loop, at most
`max_pending` at a time (beyond that they are dropped and the client retries, as with
any overloaded server). So do queries from a source the gateway does not know yet, which
wait on the loop for one more read of the change feed (`late`, which bounds them) before
they are answered or refused.

The engine, answer cache and query log are shared with the loop's thread; see
their notes on what that requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from contextlib import AbstractContextManager

from ztsim.datagram import BATCH, Answer, DatagramServer, Peer, bind_udp
from ztsim.dns.engine import Forward
from ztsim.dns.serve.gateway import Gateway
from ztsim.dns.wire.constants import HEADER_LEN

DEFAULT_MAX_PENDING = 10_000
log = logging.getLogger("ztsim.dns")


class UdpServer:
    def __init__(
        self,
        gateway: Gateway,
        sock: socket.socket,
        max_pending: int = DEFAULT_MAX_PENDING,
        *,
        batched: bool = True,
    ) -> None:
        """`batched`: use recvmmsg/sendmmsg where the system has them."""
        self.gateway = gateway
        self.max_pending = max_pending
        # A batch's answers leave together (one sendmmsg): DNS answers cost little each, so
        # the system call, not the wait for the batch's last answer, is what counts here.
        self._server = DatagramServer(
            sock, self._batch, name="dns-udp", batched=batched, reply_chunk=BATCH
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._overflow = 0

    @property
    def sock(self) -> socket.socket:
        return self._server.sock

    @property
    def batched(self) -> bool:
        return self._server.batched

    @property
    def dropped(self) -> int:
        """Queries dropped: beyond `max_pending`, or their answer could not be sent."""
        return self._overflow + self._server.send_failures

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server.start()

    def close(self) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()

    def _batch(self) -> AbstractContextManager[Answer]:
        return contextlib.nullcontext(self._answerer())

    def _answerer(self) -> Answer:
        """How this batch's datagrams are answered. What every query of a batch would read
        alike is read once: the clock (as for RADIUS: the datagrams of one system call
        share their time), the engine, the identity snapshot's address map and whether
        anyone observes answers. A snapshot swapped meanwhile serves from the next batch."""
        gateway = self.gateway
        now = gateway.clock()
        handle = gateway.engine.handle
        by_source = gateway.identities.by_source
        by_address = gateway.identities.snapshot.by_address
        observe = gateway.observe if gateway.on_answer is not None else None

        def answer(data: bytes, peer: Peer) -> bytes | None:
            source = peer[0]
            # The address map first: the resolver's own path (IPv4-mapped addresses,
            # network defaults) only for an address the map does not hold.
            who = by_address.get(source) or by_source(source)
            if who is None and self._wait_late(data, peer):
                return None
            step = handle(data, who, now, udp=True)
            if step is None:
                return None
            if isinstance(step, Forward):
                self._hand_over(step, peer)
                return None
            if who is not None and observe is not None:
                observe(source, step.wire)
            return step.wire

        return answer

    def _hand_over(self, step: Forward, peer: Peer) -> None:
        if len(self._tasks) < self.max_pending and self._loop is not None:
            self._loop.call_soon_threadsafe(self._spawn, step, peer)
        else:
            self._overflow += 1

    def _wait_late(self, data: bytes, peer: Peer) -> bool:
        """Hand a query from an unknown source to the loop to wait for the feed's next read;
        False: answer it now (no waiting room, no place left, or not a query at all)."""
        late, loop = self.gateway.late, self._loop
        # A response (QR) or a runt gets no answer worth waiting for.
        if late is None or loop is None or len(data) < HEADER_LEN or data[2] & 0x80:
            return False
        if not late.enter():
            return False
        try:
            loop.call_soon_threadsafe(self._spawn_late, data, peer)
        except RuntimeError:  # the loop has closed: stopping
            late.leave()
            return False
        return True

    def _spawn_late(self, data: bytes, peer: Peer) -> None:
        task = asyncio.get_running_loop().create_task(self._late(data, peer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _late(self, data: bytes, peer: Peer) -> None:
        gateway = self.gateway
        late = gateway.late
        assert late is not None
        try:
            await late.wait()
        finally:
            late.leave()
        who = gateway.identities.by_source(peer[0])
        reply = await gateway.answer(data, who, udp=True, source=peer[0])
        if reply is not None:
            self._server.send(reply, peer)

    def _spawn(self, step: Forward, peer: Peer) -> None:
        task = asyncio.get_running_loop().create_task(self._forward(step, peer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(self, step: Forward, peer: Peer) -> None:
        response = await self.gateway.upstreams.query(step.upstream_query)
        reply = self.gateway.engine.resolved(step, response, self.gateway.clock())
        self.gateway.observe(peer[0], reply)  # forwarded: the requester was known by address
        self._server.send(reply, peer)


def udp_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound UDP socket; `reuse_port` lets worker processes share the port."""
    return bind_udp(host, port, reuse_port=reuse_port)


async def serve_udp(gateway: Gateway, sock: socket.socket, *, batched: bool = True) -> UdpServer:
    server = UdpServer(gateway, sock, batched=batched)
    server.start()
    return server
