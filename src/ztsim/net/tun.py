"""The userspace Geneve endpoint's I/O: a TUN device, a UDP socket and one thread.

This kernel has no geneve device, so ztsim carries Geneve itself: the kernel routes a
site's prefixes into a TUN device (IFF_TUN | IFF_NO_PI: bare IP packets), the thread
reads them, lets the engine (`ztsim.net.endpoint`) wrap them and sends the datagrams
from a UDP socket on port 6081; datagrams coming back go the other way. One thread
polls both descriptors (and a pipe that wakes it to stop), so the engine is only ever
used by one thread and needs no lock.

The TUN device and the socket belong to the network namespace of the thread that
opens them: open them inside the namespace (`open_endpoint` does it for the namespace
of a command prefix such as `ip netns exec NS`); the pump may run anywhere afterwards,
and `swap` gives it another engine (new sites or routes) without stopping it.
Addresses, routes and the MTU of the device are the deployment's (iproute2); the MTU
must leave room for the encapsulation (see `overhead`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import select
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from ztsim.net.endpoint import Delivered, Endpoint
from ztsim.net.geneve import PORT
from ztsim.net.netns import in_namespace_of

_log = logging.getLogger(__name__)

TUNSETIFF = 0x400454CA  # linux/if_tun.h: _IOW('T', 202, int)
IFF_TUN = 0x0001  # linux/if_tun.h: an IP-level device
IFF_NO_PI = 0x1000  # linux/if_tun.h: no 4-octet packet information before each packet
_IFNAMSIZ = 16  # linux/if.h: interface names, NUL included
_BUFFER = 65_535  # the largest datagram, so nothing is truncated
_BATCH = 64  # packets per descriptor per wake-up, so neither direction starves the other
_SOCKET_BUFFER = 4 << 20  # asked for; the kernel caps it at net.core.[rw]mem_max
_UDP_IPV4 = 20 + 8  # the outer IPv4 and UDP headers


def overhead(options_length: int) -> int:
    """Octets a tunnelled packet grows by over IPv4: the TUN device's MTU is the underlay's
    MTU less this (1500 - 68 = 1432 with a policy class and an identity option)."""
    return _UDP_IPV4 + 8 + options_length


def open_tun(name: str) -> int:
    """A TUN device named `name` (made if it does not exist) in the calling thread's
    namespace; its descriptor, non-blocking."""
    encoded = name.encode()
    if not encoded or len(encoded) >= _IFNAMSIZ:
        raise ValueError(f"{name!r}: an interface name of 1 to 15 octets")
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", encoded, IFF_TUN | IFF_NO_PI))
        os.set_blocking(fd, False)
    except BaseException:
        os.close(fd)
        raise
    return fd


def udp_socket(address: str, port: int = PORT) -> socket.socket:
    """The underlay socket, bound, non-blocking, in the calling thread's namespace."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        # Bursts from the TUN side outrun one thread: a deep buffer saves retransmissions.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
        sock.bind((address, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def open_endpoint(
    name: str, address: str, prefix: Sequence[str] = (), timeout: float = 10.0
) -> tuple[int, socket.socket]:
    """The TUN device `name` and the UDP socket on `address`, both in the network namespace
    that commands run under `prefix` see (e.g. `ip netns exec NS`; none: the caller's).
    A shell started under `prefix` names its process, a short-lived thread enters that
    process's namespace and opens both there: whatever `prefix` does (`ip netns exec`,
    `nsenter`), the descriptors land where the commands act."""

    def opened() -> tuple[int, socket.socket]:
        fd = open_tun(name)
        try:
            return fd, udp_socket(address)
        except BaseException:
            os.close(fd)
            raise

    return in_namespace_of(prefix, opened, timeout)


class TunnelPump:
    """Moves packets between a TUN device and a UDP socket through an engine. Owns both
    descriptors: `stop` closes them."""

    def __init__(
        self,
        engine: Endpoint,
        tun_fd: int,
        sock: socket.socket,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self._tun = tun_fd
        self._sock = sock
        self._clock = clock
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._next: Endpoint | None = None
        self._taken = threading.Event()
        self.errors: Counter[str] = Counter()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ztsim-geneve", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout)
        for fd in (self._tun, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._sock.close()

    def swap(self, engine: Endpoint, timeout: float = 1.0) -> None:
        """Carry packets with `engine` from now on (new sites or routes). The pump's thread
        takes it between two packets, so no packet sees half of a change, and carries
        the counters over, so none is lost; this returns once it has (or after `timeout`),
        so routes added next meet the new engine. Before `start` it is taken at once."""
        if self._thread is None or not self._thread.is_alive():
            _carry(self.engine, engine)
            self.engine = engine
            return
        self._taken.clear()
        self._next = engine
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"s")
        self._taken.wait(timeout)

    def __enter__(self) -> TunnelPump:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        poller = select.poll()
        sock_fd = self._sock.fileno()
        for fd in (self._tun, sock_fd, self._wake_r):
            poller.register(fd, select.POLLIN)
        buffer = bytearray(_BUFFER)
        view = memoryview(buffer)
        while not self._stopping:
            for fd, _ in poller.poll():
                if fd == self._tun:
                    self._from_tun()
                elif fd == sock_fd:
                    self._from_udp(buffer, view)
                elif fd == self._wake_r:
                    self._take_engine()

    def _take_engine(self) -> None:
        os.read(self._wake_r, 4096)  # the wake-ups so far; poll said it would not block
        engine, self._next = self._next, None
        if engine is not None:
            _carry(self.engine, engine)
            self.engine = engine
        self._taken.set()

    def _from_tun(self) -> None:
        for _ in range(_BATCH):
            try:
                packet = os.read(self._tun, _BUFFER)
            except BlockingIOError:
                return
            except OSError as err:
                self._failed("tun_read", err)
                return
            for address, datagram in self.engine.outbound(packet, self._clock()):
                try:
                    self._sock.sendto(datagram, address)
                except BlockingIOError:
                    self.errors["send_busy"] += 1  # the socket buffer is full: a loss, as on a wire
                except OSError as err:
                    self._failed("send", err)

    def _from_udp(self, buffer: bytearray, view: memoryview) -> None:
        for _ in range(_BATCH):
            try:
                size, source = self._sock.recvfrom_into(buffer)
            except BlockingIOError:
                return
            except OSError as err:
                self._failed("receive", err)
                return
            result = self.engine.inbound(view[:size], source, self._clock())
            if isinstance(result, Delivered):
                try:
                    os.write(self._tun, result.packet)
                except OSError as err:
                    self._failed("tun_write", err)

    def _failed(self, where: str, err: OSError) -> None:
        self.errors[where] += 1
        if self.errors[where] == 1:  # the first of a kind: the counter says the rest
            _log.warning("geneve %s failed: %s", where, errno.errorcode.get(err.errno or 0, err))


def _carry(old: Endpoint, new: Endpoint) -> None:
    """The counters of the engine a pump leaves, added to the one it takes."""
    new.drops.update(old.drops)
    new.sent += old.sent
    new.received += old.received
    new.last_heard = {**old.last_heard, **new.last_heard}
