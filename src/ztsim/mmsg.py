"""Many datagrams per system call on Linux: recvmmsg(2) and sendmmsg(2) through ctypes.

Under load a Python UDP server (the DNS gateway, the RADIUS server) spends more on
the two system calls around each request (and on turning each source address into
text) than on much of the request itself.
`DatagramBatch` receives up to `slots` datagrams in one call, hands them out as
bytes with their source, collects the replies and sends them in one call. The
kernel still does its per-datagram work; what goes is the per-call cost on both
sides of it.

Memory layout: the kernel's `struct mmsghdr` arrays live in bytearrays, their
field offsets taken from ctypes mirrors of the C structures (so they hold on any
Linux ABI ctypes knows), and are read and written through memoryviews.
Datagrams larger than `SLOT` arrive cut short (MSG_TRUNC) and are dropped: no DNS
query needs that much, and RADIUS packets are at most 4096 octets (RFC 2865 §3). Unavailable (not Linux, no such libc calls): `batch_calls`
returns None and the caller uses plain recvfrom/sendto.

`batch_for` gives the same rings in C (`_mmsg.c`) where the install could build them
and ZTSIM_PURE_PYTHON is not set (read once, at import, as for the RADIUS hot path):
handing out a datagram and queueing its reply cost about 0.55 us here in Python, a
tenth of a DNS query's CPU. `DatagramBatch` is their reference (the tests run both).
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol

MSG_WAITFORONE = 0x10000  # linux/socket.h: block for the first datagram only
MSG_TRUNC = 0x20  # linux/socket.h: the datagram was longer than the buffer
SLOT = 4096  # bytes per datagram, each way
_NAME_ROOM = 32  # bytes per source address: a sockaddr_in6 is 28


class Iovec(ctypes.Structure):
    _fields_ = (("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t))


class _Msghdr(ctypes.Structure):
    _fields_ = (
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    )


class Mmsghdr(ctypes.Structure):
    _fields_ = (("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint))


_HDR = ctypes.sizeof(Mmsghdr)
_IOV = ctypes.sizeof(Iovec)
# Offsets of the fields touched per datagram, in units of their own size.
_NAME_PTR = _Msghdr.msg_name.offset // 8
_NAMELEN = _Msghdr.msg_namelen.offset // 4
_FLAGS = _Msghdr.msg_flags.offset // 4
_LEN = Mmsghdr.msg_len.offset // 4
_PER_HDR_U32 = _HDR // 4
_PER_HDR_U64 = _HDR // 8

_Call = Callable[..., int]


def batch_calls() -> tuple[_Call, _Call] | None:
    """libc's recvmmsg and sendmmsg, or None where there are none."""
    if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        receive, send = libc.recvmmsg, libc.sendmmsg
    except (OSError, AttributeError):
        return None
    receive.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p)
    receive.restype = ctypes.c_int
    send.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int)
    send.restype = ctypes.c_int
    return receive, send


class Batch(Protocol):
    """One socket's receive and send rings, as `DatagramBatch` and `_mmsg.Batch` have them."""

    @property
    def slots(self) -> int: ...

    @property
    def queued(self) -> int: ...

    def receive(self) -> int: ...

    def received(self, count: int) -> list[tuple[int, bytes, tuple[str, int]]]: ...

    def reply(self, slot: int, wire: bytes) -> bool: ...

    def flush(self) -> int: ...


def _c_module() -> ModuleType | None:
    if os.environ.get("ZTSIM_PURE_PYTHON"):
        return None
    try:
        from ztsim import _mmsg
    except ImportError:  # not built (no compiler at install): the ctypes rings serve
        return None
    return _mmsg


_C = _c_module()


def batch_for(sock: socket.socket, slots: int = 64) -> Batch | None:
    """Rings for `sock` (IPv4 or IPv6, datagrams): in C where built, else through ctypes;
    None where the system has no recvmmsg/sendmmsg."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_DGRAM:
        raise ValueError("only IPv4 and IPv6 datagram sockets")
    calls = batch_calls()
    if calls is None:
        return None
    if _C is not None:
        batch: Batch = _C.Batch(sock.fileno(), sock.family == socket.AF_INET6, slots, SLOT)
        return batch
    return DatagramBatch(sock, calls, slots)


def _address(buffer: bytearray | ctypes.Array[Any]) -> int:
    return ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer))


class DatagramBatch:
    """One socket's receive and send rings. Not thread-safe: one serving thread owns it."""

    def __init__(self, sock: socket.socket, calls: tuple[_Call, _Call], slots: int = 64) -> None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            raise ValueError("only IPv4 and IPv6 datagram sockets")
        self._receive, self._send = calls
        self._fd = sock.fileno()
        self._v6 = sock.family == socket.AF_INET6
        self._namelen = 28 if self._v6 else 16  # sizeof sockaddr_in6 / sockaddr_in
        self.slots = slots
        self._in_hdrs = bytearray(slots * _HDR)
        self._out_hdrs = bytearray(slots * _HDR)
        self._in_iovs = bytearray(slots * _IOV)
        self._out_iovs = bytearray(slots * _IOV)
        self._in_data = bytearray(slots * SLOT)
        self._out_data = bytearray(slots * SLOT)
        self._names = bytearray(slots * _NAME_ROOM)
        names = _address(self._names)
        for hdrs, iovs, data in (
            (self._in_hdrs, self._in_iovs, self._in_data),
            (self._out_hdrs, self._out_iovs, self._out_data),
        ):
            iov_base, data_base = _address(iovs), _address(data)
            for slot in range(slots):
                iov = Iovec.from_buffer(iovs, slot * _IOV)
                iov.iov_base, iov.iov_len = data_base + slot * SLOT, SLOT
                header = Mmsghdr.from_buffer(hdrs, slot * _HDR).msg_hdr
                header.msg_iov, header.msg_iovlen = iov_base + slot * _IOV, 1
                # Reply n goes to the source of datagram n unless `reply` says otherwise.
                header.msg_name = names + slot * _NAME_ROOM
                header.msg_namelen = self._namelen
        self._names_base = names
        self._in_base = _address(self._in_hdrs)
        self._out_base = _address(self._out_hdrs)
        self._in_u32 = memoryview(self._in_hdrs).cast("I")
        self._out_u32 = memoryview(self._out_hdrs).cast("I")
        self._out_u64 = memoryview(self._out_hdrs).cast("Q")
        self._out_iov_u64 = memoryview(self._out_iovs).cast("Q")
        self._in_view = memoryview(self._in_data)
        self._texts: dict[bytes, str] = {}
        self._queued = 0
        self._redirected: list[int] = []  # replies whose name pointer `flush` puts back
        # One record per name slot: (port, address); sockaddr_in6 has flow info before it.
        self._sources = struct.Struct("!2xH4x16s8x" if self._v6 else "!2xH4s24x")

    def receive(self) -> int:
        """Block until at least one datagram is there; how many were taken (0: interrupted)."""
        count = self._receive(self._fd, self._in_base, self.slots, MSG_WAITFORONE, None)
        if count < 0:
            code = ctypes.get_errno()
            if code == errno.EINTR:
                return 0
            raise OSError(code, os.strerror(code))
        return count

    def received(self, count: int) -> list[tuple[int, bytes, tuple[str, int]]]:
        """(slot, datagram, source) of the first `count` slots, less any cut short (or the
        empty wake-up of a shut-down socket). Read in bulk: lengths, flags and sources come
        out of the kernel's arrays in one C call each, not field by field."""
        words = self._in_u32
        lengths = words[_LEN::_PER_HDR_U32][:count].tolist()
        flags = words[_FLAGS::_PER_HDR_U32][:count].tolist()
        namelens = words[_NAMELEN::_PER_HDR_U32][:count].tolist()
        sources = self._sources.iter_unpack(memoryview(self._names)[: count * _NAME_ROOM])
        view, texts, out = self._in_view, self._texts, []
        for slot, (port, address) in enumerate(sources):
            if flags[slot] & MSG_TRUNC or not namelens[slot]:
                words[slot * _PER_HDR_U32 + _NAMELEN] = self._namelen
                continue
            text = texts.get(address)
            if text is None:
                text = self._text(address)
            offset = slot * SLOT
            out.append((slot, bytes(view[offset : offset + lengths[slot]]), (text, port)))
        return out

    def _text(self, address: bytes) -> str:
        text = socket.inet_ntop(socket.AF_INET6 if self._v6 else socket.AF_INET, address)
        if len(self._texts) >= 65536:
            self._texts.clear()
        self._texts[address] = text
        return text

    def reply(self, slot: int, wire: bytes) -> bool:
        """Queue `wire` for the source of received `slot`; False if it does not fit a slot."""
        size = len(wire)
        if size > SLOT or self._queued >= self.slots:
            return False
        out = self._queued
        start = out * SLOT
        self._out_data[start : start + size] = wire
        self._out_iov_u64[out * 2 + 1] = size
        if slot != out:
            self._out_u64[out * _PER_HDR_U64 + _NAME_PTR] = self._names_base + slot * _NAME_ROOM
            self._redirected.append(out)
        self._queued = out + 1
        return True

    @property
    def queued(self) -> int:
        """Replies waiting for `flush`."""
        return self._queued

    def flush(self) -> int:
        """Send every queued reply; how many could not be sent (UDP: the clients retry)."""
        queued, self._queued = self._queued, 0
        try:
            return self._send_queued(queued)
        finally:
            for out in self._redirected:
                self._out_u64[out * _PER_HDR_U64 + _NAME_PTR] = self._names_base + out * _NAME_ROOM
            self._redirected.clear()

    def _send_queued(self, queued: int) -> int:
        done = failed = 0
        while done + failed < queued:
            start = done + failed
            sent = self._send(self._fd, self._out_base + start * _HDR, queued - start, 0)
            if sent > 0:
                done += sent
            elif ctypes.get_errno() != errno.EINTR:
                failed += 1  # this reply's error (e.g. a full buffer): skip it, send the rest
        return failed
