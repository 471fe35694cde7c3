"""The NFLOG listener's I/O: a netlink socket bound to the deny rules' group, one thread.

`open_nflog(group)` opens an AF_NETLINK / NETLINK_NETFILTER socket in the calling
thread's network namespace (a role that lives in a namespace opens it from inside) and
configures it with `ztsim.net.nflog.setup_requests`, waiting for each acknowledgement,
so a refusal (EPERM: another socket listens to the group in this namespace, or the
caller lacks CAP_NET_ADMIN there) is an `NflogError` at once rather than silence later.
Packets logged during those few milliseconds are not delivered.

`NflogReader(sock, handler)` is the thread (`netlink_reader.NetlinkReader`, shared with
conntrack): it polls the socket and a wake-up pipe, parses each datagram and hands each
logged packet to `handler`. Nothing stops it but `stop`: datagrams that do not parse,
datagrams from anything but the kernel (netlink lets any local process send to a socket's
port id), a full receive buffer (ENOBUFS) and a handler that raises are each counted in
`counts` and the thread reads on. The kernel numbers a group's packets
(NFULNL_CFG_F_SEQ): a gap in the numbers is counted
as `lost`, so a loss in the kernel is seen even though nothing arrives to say so.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import time
from collections.abc import Callable

from ztsim.net.netlink import Ack
from ztsim.net.nflog import COPY_RANGE, NflogError, NflogPacket, parse, setup_requests
from ztsim.net.serve.netlink_reader import NetlinkReader, open_netfilter

_log = logging.getLogger(__name__)

_BUFFER = 1 << 17  # a datagram holds a batch of messages (at most the group's nlbufsiz)
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
    return open_netfilter(lambda sock: _configure(sock, setup_requests(group, copy_range), timeout))


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


class NflogReader(NetlinkReader[NflogPacket]):
    """Reads a configured NFLOG socket in a thread and calls `handler` with each logged
    packet, in the kernel's order. Owns the socket: `stop` closes it. `counts`: received,
    malformed, foreign, overrun, lost, handler_failed (read by metrics)."""

    def __init__(self, sock: socket.socket, handler: Callable[[NflogPacket], None]) -> None:
        super().__init__(
            sock,
            self._packets,
            handler,
            label="nflog",
            malformed=NflogError,
            buffer_size=_BUFFER,
            batch=_BATCH,
            log=_log,
            warn_overrun=False,  # the sequence numbers say how many went: `lost`
        )
        self._next_seq: int | None = None

    def _packets(self, data: bytes) -> list[NflogPacket]:
        packets = [m for m in parse(data) if isinstance(m, NflogPacket)]
        for packet in packets:
            if packet.seq is not None:
                if self._next_seq is not None:
                    self.counts["lost"] += (packet.seq - self._next_seq) % _SEQ_SPACE
                self._next_seq = (packet.seq + 1) % _SEQ_SPACE
        return packets
