"""The AAA server's UDP endpoints: thin adapters around `AaaCore`.

Authentication, the hot path, is served by a thread of its own that blocks in the
kernel (batches of datagrams per system call where Linux offers them): an event-loop
wake-up per datagram (poll, callbacks) cost about as much as the request itself. Accounting is read on the event loop with
`loop.add_reader`. Both call the core under its lock, so the core sees one datagram
at a time, as the event loop's own tasks (reloads, revocation) do. Every datagram is
handed to the core and its reply (if any) sent back with its batch. Bad input never raises
out of here: the core drops and counts it, and an unexpected error is logged and the
datagram dropped.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from ztsim.clock import Clock
from ztsim.mmsg import DatagramBatch, batch_calls
from ztsim.radius.aaa.core import AaaCore

log = logging.getLogger("ztsim.radius.serve.server")


BATCH = 64  # datagrams per system call on the authentication port
# Replies go out every this many datagrams of a batch, not at its end: the first answer
# of a full batch does not wait for the last request to be decided.
REPLY_CHUNK = 16
# Datagrams handled per wake-up of the event loop: draining a burst in one go saves a
# poll per datagram, and the cap keeps other tasks (the writer, the API) running.
_DRAIN = 64


class _Endpoint:
    """One UDP socket read with `loop.add_reader`: each readiness drains up to _DRAIN
    datagrams, answering each at once (asyncio's datagram transport reads one per poll)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        handle: Callable[[bytes, tuple[str, int]], bytes | None],
        lock: AbstractContextManager[object],
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.handle = handle
        self.lock = lock
        self.send_failures = 0
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._ready)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _ready(self) -> None:
        for _ in range(_DRAIN):
            try:
                data, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("UDP receive error: %s", exc)
                return
            try:
                with self.lock:
                    reply = self.handle(data, _peer(addr))
            except Exception:
                # A bug must not stop the server: the request is dropped and logged.
                log.exception("unexpected error while handling a RADIUS datagram")
                continue
            if reply is not None:
                try:
                    self.sock.sendto(reply, addr)
                except OSError:
                    # UDP: the client retransmits; a full send buffer drops this reply.
                    self.send_failures += 1

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


def _peer(addr: tuple[str, int] | tuple[str, int, int, int]) -> tuple[str, int]:
    # IPv6 sources come with flow info and scope id; the core keys on host and port.
    return addr if len(addr) == 2 else (addr[0], addr[1])


class _ThreadEndpoint:
    """One UDP socket served by a thread of its own: block in the kernel for the next
    datagrams, handle them, send the replies. On Linux up to `BATCH` datagrams come and
    go per system call (`ztsim.mmsg`) and the core's lock is taken once per batch;
    elsewhere one recvfrom and one sendto per datagram. The GIL is released while
    blocked, so the event loop's tasks run in between."""

    def __init__(
        self,
        sock: socket.socket,
        handle: Callable[[bytes, tuple[str, int], datetime], bytes | None],
        clock: Clock,
        lock: AbstractContextManager[object],
        name: str,
        *,
        batched: bool = True,
    ) -> None:
        self.sock = sock
        self.handle = handle
        # Read once per batch: the datagrams of one system call share their time.
        self.clock = clock
        self.lock = lock
        self.send_failures = 0
        self._closing = False
        calls = batch_calls() if batched else None
        self._batch = None if calls is None else DatagramBatch(sock, calls, BATCH)
        sock.setblocking(True)
        serve = self._serve_batches if self._batch is not None else self._serve
        self._thread = threading.Thread(target=serve, name=name, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def batched(self) -> bool:
        return self._batch is not None

    def _answer(self, data: bytes, addr: tuple[str, int], now: datetime) -> bytes | None:
        try:
            return self.handle(data, addr, now)
        except Exception:
            # A bug must not stop the server: the request is dropped and logged.
            log.exception("unexpected error while handling a RADIUS datagram")
            return None

    def _serve_batches(self) -> None:
        batch, lock, handle, clock = self._batch, self.lock, self.handle, self.clock
        assert batch is not None
        while True:
            try:
                count = batch.receive()
            except OSError as exc:
                if self._closing:
                    return
                log.debug("UDP receive error: %s", exc)
                continue
            if self._closing:
                return
            with lock:
                now = clock()
                for slot, data, addr in batch.received(count):
                    # As `_answer`, inline: a call less per datagram.
                    try:
                        reply = handle(data, addr, now)
                    except Exception:
                        log.exception("unexpected error while handling a RADIUS datagram")
                        continue
                    if reply is not None and not batch.reply(slot, reply):
                        self._send(reply, addr)
                    if batch.queued >= REPLY_CHUNK:
                        self.send_failures += batch.flush()
            self.send_failures += batch.flush()

    def _serve(self) -> None:
        sock, lock, answer, clock = self.sock, self.lock, self._answer, self.clock
        while True:
            try:
                data, addr = sock.recvfrom(65535)
            except OSError as exc:
                if self._closing:
                    return
                log.debug("UDP receive error: %s", exc)
                continue
            if self._closing:
                return
            with lock:
                reply = answer(data, _peer(addr), clock())
            if reply is not None:
                self._send(reply, addr)

    def _send(self, reply: bytes, addr: tuple[str, int]) -> None:
        try:
            self.sock.sendto(reply, addr)
        except OSError:
            # UDP: the client retransmits; a full send buffer drops this reply.
            self.send_failures += 1

    def close(self) -> None:
        self._closing = True
        # Closing a socket does not wake a thread blocked reading it: a datagram does.
        host, port = self.sock.getsockname()[:2]
        wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - not a bind address
        try:
            with socket.socket(self.sock.family, socket.SOCK_DGRAM) as waker:
                waker.sendto(b"", (wildcard.get(host, host), port))
        except OSError as exc:
            log.debug("could not wake the RADIUS receive thread: %s", exc)
        self._thread.join(timeout=5)
        self.sock.close()


@dataclass
class RadiusServer:
    auth: _ThreadEndpoint
    acct: _Endpoint

    @property
    def auth_port(self) -> int:
        return self.auth.port

    @property
    def acct_port(self) -> int:
        return self.acct.port

    def close(self) -> None:
        self.auth.close()
        self.acct.close()


# Bursts from a gateway (hundreds of requests in flight) must queue in the kernel, not
# be dropped: ask for 4 MiB (Linux caps it at net.core.rmem_max/wmem_max).
SOCKET_BUFFER = 4 * 1024 * 1024


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


async def start_server(
    core: AaaCore,
    lock: AbstractContextManager[object],
    host: str,
    auth_port: int,
    acct_port: int,
    *,
    batched: bool = True,
) -> RadiusServer:
    """Bind the authentication and accounting endpoints (port 0 picks a free port);
    `batched`: authentication over recvmmsg/sendmmsg where the system has them."""
    loop = asyncio.get_running_loop()
    acct = _Endpoint(loop, _bound_socket(host, acct_port), core.handle_acct, lock)
    try:
        auth_socket = _bound_socket(host, auth_port)
    except OSError:
        acct.close()
        raise
    auth = _ThreadEndpoint(
        auth_socket, core.handle_auth, core.clock, lock, "radius-auth", batched=batched
    )
    return RadiusServer(auth, acct)
