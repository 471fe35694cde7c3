"""DNS over UDP (RFC 1035 §4.2.1): a thin adapter around `Gateway`.

The hot path runs on a thread of its own that blocks in the kernel for the next
datagrams, asks the sans-I/O engine, and sends the answers: no event-loop round
trip per query, which under load cost more than the query itself. On Linux it
takes and sends up to `BATCH` datagrams per system call (`mmsg`); elsewhere one
recvfrom and one sendto per query. The GIL is released while the thread waits, so
the event loop (TCP, DoT, DoH, reloads) runs in between. Only queries that need an
upstream cross over to the loop, at most `max_pending` at a time (beyond that they
are dropped and the client retries, as with any overloaded server).

The engine, answer cache and query log are shared with the loop's thread; see
their notes on what that requires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading

from ztsim.dns.engine import Answer, Forward, Step
from ztsim.dns.serve.gateway import Gateway
from ztsim.mmsg import DatagramBatch, batch_calls

MAX_DATAGRAM = 65535
BATCH = 64  # datagrams per system call: amortises it, bounds how long a reply waits
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
        self.sock = sock
        self.max_pending = max_pending
        calls = batch_calls() if batched else None
        self._batch = None if calls is None else DatagramBatch(sock, calls, BATCH)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self.dropped = 0

    @property
    def batched(self) -> bool:
        return self._batch is not None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.sock.setblocking(True)
        serve = self._serve_batches if self._batch is not None else self._serve_one_by_one
        self._thread = threading.Thread(target=serve, name="dns-udp", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing = True
        # Wakes the thread blocked in the kernel (Linux does so even though an unconnected
        # UDP socket answers ENOTCONN); a wake-up datagram could land on another worker.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RD)
        if self._thread is not None:
            self._thread.join(timeout=5)
        for task in self._tasks:
            task.cancel()
        self.sock.close()

    def _step(self, data: bytes, addr: tuple[str, int]) -> Step:
        gateway = self.gateway
        try:
            return gateway.engine.handle(
                data, gateway.identities.by_source(addr[0]), gateway.clock(), udp=True
            )
        except Exception:
            # A bug must not stop the server: this query is dropped and logged.
            log.exception("unexpected error while answering a DNS query")
            return None

    def _serve_batches(self) -> None:
        batch, step_for = self._batch, self._step
        assert batch is not None
        while not self._closing:
            try:
                count = batch.receive()
            except OSError as exc:
                log.debug("UDP receive error: %s", exc)
                continue
            for slot, data, addr in batch.received(count):
                step = step_for(data, addr)
                if step is None:
                    continue
                if isinstance(step, Answer):
                    if not batch.reply(slot, step.wire):
                        self._send(step.wire, addr)
                else:
                    self._hand_over(step, addr)
            self.dropped += batch.flush()

    def _serve_one_by_one(self) -> None:
        sock, step_for = self.sock, self._step
        while not self._closing:
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM)
            except OSError:
                continue  # e.g. an ICMP error queued for an earlier send
            if addr is None:
                continue  # woken by `close`
            step = step_for(data, addr)
            if step is None:
                continue
            if isinstance(step, Answer):
                self._send(step.wire, addr)
            else:
                self._hand_over(step, addr)

    def _send(self, wire: bytes, addr: tuple[str, int]) -> None:
        try:
            self.sock.sendto(wire, addr)
        except OSError:
            self.dropped += 1  # a full send buffer: UDP promises nothing, the client retries

    def _hand_over(self, step: Forward, addr: tuple[str, int]) -> None:
        if len(self._tasks) < self.max_pending and self._loop is not None:
            self._loop.call_soon_threadsafe(self._spawn, step, addr)
        else:
            self.dropped += 1

    def _spawn(self, step: Forward, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._forward(step, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(self, step: Forward, addr: tuple[str, int]) -> None:
        response = await self.gateway.upstreams.query(step.upstream_query)
        self._send(self.gateway.engine.resolved(step, response, self.gateway.clock()), addr)


def udp_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound UDP socket; `reuse_port` lets worker processes share the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind((host, port))
    return sock


async def serve_udp(gateway: Gateway, sock: socket.socket, *, batched: bool = True) -> UdpServer:
    server = UdpServer(gateway, sock, batched=batched)
    server.start()
    return server
