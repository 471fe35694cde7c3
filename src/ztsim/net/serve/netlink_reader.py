"""A netfilter netlink socket opened, and read by one thread: what NFLOG and conntrack share.

The NFLOG listener (`nflog_socket`) and the conntrack listener (`conntrack_socket`) both
read datagrams that the kernel multicasts on a NETLINK_NETFILTER socket. They differ in
what they ask for and what a message means, not in how the socket is made or read, so
that is written once here:

`open_netfilter(configure)` makes the socket in the calling thread's namespace with a
deep receive buffer, lets the kernel pick its port id, runs `configure` (join groups,
send setup requests) and returns it non-blocking; it is closed if any step fails.

`NetlinkReader(sock, parse, handler, ...)` is the thread: it polls the socket and a
wake-up pipe and hands each message `parse` returns to `handler`. Nothing stops it but
`stop`: datagrams that do not parse (`malformed`), datagrams from anything but the kernel
(`foreign`: netlink lets any local process send to a socket's port id), a full receive
buffer (`overrun`, ENOBUFS) and a handler that raises (`handler_failed`) are counted in
`counts` and the thread reads on; `received` counts the messages handed on. The first of
each kind of failure is logged, the counter says the rest.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Generic, Self, TypeVar

from ztsim.net.netlink import NETLINK_NETFILTER

_SO_RCVBUFFORCE = 33  # asm-generic/socket.h; not in Python's socket module
_SOCKET_BUFFER = 4 << 20  # asked for; SO_RCVBUFFORCE (root) passes net.core.rmem_max
_KERNEL = 0  # netlink(7): the kernel's port id
_M = TypeVar("_M")


def open_netfilter(configure: Callable[[socket.socket], None]) -> socket.socket:
    """A NETLINK_NETFILTER socket in the calling thread's namespace, bound (the kernel
    picks the port id), configured by `configure`, non-blocking; closed if a step fails."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _SOCKET_BUFFER)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
        sock.bind((0, 0))
        configure(sock)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class NetlinkReader(Generic[_M]):
    """Reads a netlink socket in a thread named `ztsim-<label>` and calls `handler` with
    each message `parse` returns for a datagram, in the kernel's order. `parse` raises
    `malformed` for a datagram that does not parse. Owns the socket: `stop` closes it."""

    def __init__(
        self,
        sock: socket.socket,
        parse: Callable[[bytes], Iterable[_M]],
        handler: Callable[[_M], None],
        *,
        label: str,
        malformed: type[Exception],
        buffer_size: int,
        batch: int,
        log: logging.Logger,
        warn_overrun: bool = True,
    ) -> None:
        self._sock = sock
        self._parse = parse
        self._handler = handler
        self._label = label
        self._malformed = malformed
        self._buffer_size = buffer_size
        self._batch = batch  # datagrams per wake-up, then the stop flag is looked at again
        self._log = log
        self._warn_overrun = warn_overrun
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._stopping = False
        # received, malformed, foreign, overrun, handler_failed, receive_failed and what
        # `parse` adds: read by metrics.
        self.counts: Counter[str] = Counter()

    @property
    def port_id(self) -> int:
        """The socket's netlink port id (netlink(7) nl_pid)."""
        port: int = self._sock.getsockname()[0]
        return port

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"ztsim-{self._label}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._sock.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        buffer = bytearray(self._buffer_size)
        while not self._stopping:
            for fd, _ in poller.poll():
                if fd != self._wake_r:
                    self._drain(buffer)

    def _drain(self, buffer: bytearray) -> None:
        for _ in range(self._batch):
            try:
                size, (sender, _) = self._sock.recvfrom_into(buffer)
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno == errno.ENOBUFS:  # the kernel dropped messages; reading goes on
                    if self._warn_overrun:
                        self._count_first("overrun", "the receive buffer overflowed")
                    else:
                        self.counts["overrun"] += 1
                    continue
                self._count_first("receive_failed", f"receive failed: {err.strerror}")
                return
            if sender != _KERNEL:
                self.counts["foreign"] += 1
                continue
            try:
                messages = self._parse(bytes(buffer[:size]))
            except self._malformed as err:
                self._count_first("malformed", f"a datagram did not parse: {err}")
                continue
            for message in messages:
                self._deliver(message)

    def _deliver(self, message: _M) -> None:
        self.counts["received"] += 1
        try:
            self._handler(message)
        except Exception:  # the reader keeps reading whatever one message's handling does
            self._count_first("handler_failed", f"the {self._label} handler failed", True)

    def _count_first(self, what: str, message: str, exc_info: bool = False) -> None:
        self.counts[what] += 1
        if self.counts[what] == 1:  # the first of a kind is logged: the counter says the rest
            self._log.warning("%s: %s", self._label, message, exc_info=exc_info)
