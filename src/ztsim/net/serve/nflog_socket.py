"""The NFLOG listener's I/O: a netlink socket bound to the deny rules' group, one thread.

`open_nflog(group)` opens an AF_NETLINK / NETLINK_NETFILTER socket in the calling
thread's network namespace (a role that lives in a namespace opens it from inside) and
configures it with `ztsim.net.nflog.setup_requests`, waiting for each acknowledgement,
so a refusal (EPERM: another socket listens to the group in this namespace, or the
caller lacks CAP_NET_ADMIN there) is an `NflogError` at once rather than silence later. Packets logged
during those few milliseconds are not delivered.

`NflogReader(sock, handler)` is the thread: it polls the socket and a wake-up pipe,
parses each datagram and hands each logged packet to `handler`. Nothing stops it but
`stop`: datagrams that do not parse, datagrams from anything but the kernel (netlink
lets any local process send to a socket's port id), a full receive buffer (ENOBUFS)
and a handler that raises are each counted in `counts` and the thread reads on. The
kernel numbers a group's packets (NFULNL_CFG_F_SEQ): a gap in the numbers is counted
as `lost`, so a loss in the kernel is seen even though nothing arrives to say so.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable

from ztsim.net.nflog import (
    COPY_RANGE,
    NETLINK_NETFILTER,
    Ack,
    NflogError,
    NflogPacket,
    parse,
    setup_requests,
)

_log = logging.getLogger(__name__)

_BUFFER = 1 << 17  # a datagram holds a batch of messages (at most the group's nlbufsiz)
_SO_RCVBUFFORCE = 33  # asm-generic/socket.h; not in Python's socket module
_SOCKET_BUFFER = 4 << 20  # asked for; SO_RCVBUFFORCE (root) passes net.core.rmem_max
_BATCH = 64  # datagrams per wake-up, then the stop flag is looked at again
_KERNEL = 0  # netlink(7): the kernel's port id
_SEQ_SPACE = 1 << 32  # NFULA_SEQ is a u32 that wraps
_HINTS = {
    errno.EPERM: " (another socket listens to this group here, or no CAP_NET_ADMIN)",
    errno.EBUSY: " (this socket already listens to the group)",
}


def open_nflog(group: int, copy_range: int = COPY_RANGE, timeout: float = 2.0) -> socket.socket:
    """A socket listening to NFLOG `group` in the calling thread's namespace, configured
    and non-blocking; NflogError if the kernel refuses a request or does not answer."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _SOCKET_BUFFER)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
        sock.bind((0, 0))  # the kernel picks the port id
        _configure(sock, setup_requests(group, copy_range), timeout)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _configure(sock: socket.socket, requests: list[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for request in requests:
        seq = struct.unpack_from("=I", request, 8)[0]  # nlmsghdr.nlmsg_seq, host order
        sock.send(request)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NflogError(f"the kernel did not acknowledge NFLOG request {seq}")
            sock.settimeout(remaining)
            try:
                data, (sender, _) = sock.recvfrom(_BUFFER)
            except TimeoutError:
                continue
            if sender != _KERNEL:
                continue
            answers = [a for a in parse(data) if isinstance(a, Ack) and a.seq == seq]
            if answers:
                if answers[0].error:
                    code = -answers[0].error
                    name = errno.errorcode.get(code, str(code))
                    hint = _HINTS.get(code, "")
                    raise NflogError(f"the kernel refused NFLOG request {seq}: {name}{hint}")
                break


class NflogReader:
    """Reads a configured NFLOG socket in a thread and calls `handler` with each logged
    packet, in the kernel's order. Owns the socket: `stop` closes it."""

    def __init__(self, sock: socket.socket, handler: Callable[[NflogPacket], None]) -> None:
        self._sock = sock
        self._handler = handler
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._next_seq: int | None = None
        # received, malformed, foreign, overrun, lost, handler_failed: read by metrics.
        self.counts: Counter[str] = Counter()

    @property
    def port_id(self) -> int:
        """The socket's netlink port id (netlink(7) nl_pid)."""
        port: int = self._sock.getsockname()[0]
        return port

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ztsim-nflog", daemon=True)
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

    def __enter__(self) -> NflogReader:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        buffer = bytearray(_BUFFER)
        while not self._stopping:
            for fd, _ in poller.poll():
                if fd != self._wake_r:
                    self._drain(buffer)

    def _drain(self, buffer: bytearray) -> None:
        for _ in range(_BATCH):
            try:
                size, (sender, _) = self._sock.recvfrom_into(buffer)
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno == errno.ENOBUFS:  # the kernel dropped messages: seq tells how many
                    self.counts["overrun"] += 1
                    continue
                self._count_first("receive_failed", f"receive failed: {err.strerror}")
                return
            if sender != _KERNEL:
                self.counts["foreign"] += 1
                continue
            try:
                messages = parse(bytes(buffer[:size]))
            except NflogError as err:
                self._count_first("malformed", f"a datagram did not parse: {err}")
                continue
            for message in messages:
                if isinstance(message, NflogPacket):
                    self._deliver(message)

    def _deliver(self, packet: NflogPacket) -> None:
        self.counts["received"] += 1
        if packet.seq is not None:
            if self._next_seq is not None:
                self.counts["lost"] += (packet.seq - self._next_seq) % _SEQ_SPACE
            self._next_seq = (packet.seq + 1) % _SEQ_SPACE
        try:
            self._handler(packet)
        except Exception:  # the audit keeps reading whatever one packet's handling does
            self._count_first("handler_failed", "the NFLOG handler failed", exc_info=True)

    def _count_first(self, what: str, message: str, exc_info: bool = False) -> None:
        self.counts[what] += 1
        if self.counts[what] == 1:  # the first of a kind is logged: the counter says the rest
            _log.warning("nflog: %s", message, exc_info=exc_info)
