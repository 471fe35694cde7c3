"""One runtime for the UDP servers (RADIUS authentication and accounting, DNS).

Each socket is served by a thread of its own that blocks in the kernel for the next
datagrams, answers them and sends the replies: an event-loop wake-up per datagram
(poll, callbacks) cost about as much as a request itself. On Linux up to `BATCH`
datagrams come and go per system call (`ztsim.mmsg`); elsewhere, or when asked, one
recvfrom and one sendto each. The GIL is released while the thread waits, so the
event loop's tasks run in between.

The user supplies `open_batch`: a context opened once per batch of received
datagrams, giving the function that answers each one. RADIUS takes its core's lock and
reads its clock there, once per batch rather than once per datagram.

A handler's exception is logged and its datagram dropped: a bug in one request never
stops the server. Replies that cannot be sent (a full buffer: UDP promises nothing,
clients retry) are counted in `send_failures`.

Closing: `shutdown(SHUT_RD)` wakes the thread blocked in the kernel (Linux does so even
though an unconnected UDP socket answers ENOTCONN) and keeps every later receive from
blocking, whatever the bound address. A wake-up datagram sent to ourselves could
instead land on another worker sharing the port (SO_REUSEPORT), or be lost before the
thread blocks.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

from ztsim.mmsg import batch_for

log = logging.getLogger("ztsim.datagram")

Peer = tuple[str, int]
Answer = Callable[[bytes, Peer], bytes | None]

BATCH = 64  # datagrams per system call: amortises it, bounds how long a reply waits
# Replies go out every this many datagrams of a batch, not at its end: the first answer
# of a full batch does not wait for the last request to be decided.
REPLY_CHUNK = 16
MAX_DATAGRAM = 65535
# Bursts (a gateway with hundreds of requests in flight) must queue in the kernel, not
# be dropped: ask for 4 MiB each way (Linux caps it at net.core.rmem_max/wmem_max).
SOCKET_BUFFER = 4 * 1024 * 1024
_JOIN_SECONDS = 5.0


def bind_udp(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound UDP socket (port 0 picks a free one); `reuse_port` lets worker processes
    share the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _peer(addr: tuple[str, int] | tuple[str, int, int, int]) -> Peer:
    # IPv6 sources come with flow info and scope id; handlers key on host and port.
    return addr if len(addr) == 2 else (addr[0], addr[1])


class DatagramServer:
    """One UDP socket, its serving thread and its replies. Owns the socket: `close` closes it."""

    def __init__(
        self,
        sock: socket.socket,
        open_batch: Callable[[], AbstractContextManager[Answer]],
        *,
        name: str,
        batched: bool = True,
        reply_chunk: int = REPLY_CHUNK,
    ) -> None:
        """`batched`: recvmmsg/sendmmsg where the system has them."""
        self.sock = sock
        self.name = name
        self.send_failures = 0  # counted without a lock: a statistic, not an invariant
        self._open_batch = open_batch
        self._reply_chunk = reply_chunk
        self._closing = False
        self._batch = batch_for(sock, BATCH) if batched else None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def batched(self) -> bool:
        return self._batch is not None

    def start(self) -> None:
        self.sock.setblocking(True)
        serve = self._serve_batches if self._batch is not None else self._serve_one_by_one
        self._thread = threading.Thread(target=serve, name=self.name, daemon=True)
        self._thread.start()

    def send(self, reply: bytes, peer: Peer) -> None:
        """Send one reply now, from any thread (e.g. an answer that waited for an upstream)."""
        try:
            self.sock.sendto(reply, peer)
        except OSError:
            self.send_failures += 1

    def close(self) -> None:
        self._closing = True
        # ENOTCONN on an unconnected socket, yet the sleeper is woken: see the module notes.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RD)
        if self._thread is not None:
            self._thread.join(timeout=_JOIN_SECONDS)
            if self._thread.is_alive():
                log.warning("%s: the serving thread did not stop in time", self.name)
        self.sock.close()

    def _dropped(self) -> None:
        # A bug must not stop the server: this datagram is dropped and logged.
        log.exception("%s: unexpected error while handling a datagram", self.name)

    def _serve_batches(self) -> None:
        batch, chunk = self._batch, self._reply_chunk
        assert batch is not None
        early = chunk < batch.slots  # else a batch's replies all leave at its end
        while True:
            try:
                count = batch.receive()
            except OSError as exc:
                if self._closing:
                    return
                log.debug("%s: UDP receive error: %s", self.name, exc)
                continue
            if self._closing:
                return
            received = batch.received(count)
            if not received:
                continue
            try:
                with self._open_batch() as answer:
                    for slot, data, peer in received:
                        try:
                            reply = answer(data, peer)
                        except Exception:
                            self._dropped()
                            continue
                        if reply is not None and not batch.reply(slot, reply):
                            self.send(reply, peer)  # too large for a slot: on its own
                        if early and batch.queued >= chunk:
                            self.send_failures += batch.flush()
            except Exception:
                self._dropped()  # opening or closing the batch's context failed
            self.send_failures += batch.flush()

    def _serve_one_by_one(self) -> None:
        sock = self.sock
        while True:
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM)
            except OSError as exc:
                if self._closing:
                    return
                # E.g. an ICMP error queued for an earlier send.
                log.debug("%s: UDP receive error: %s", self.name, exc)
                continue
            if self._closing:
                return
            if addr is None:
                continue  # no source: nothing to answer
            peer = _peer(addr)
            try:
                with self._open_batch() as answer:
                    reply = answer(data, peer)
            except Exception:
                self._dropped()
                continue
            if reply is not None:
                try:
                    sock.sendto(reply, addr)
                except OSError:
                    self.send_failures += 1
