"""The AAA server's UDP endpoints: thin users of `ztsim.datagram` around `AaaCore`.

Authentication and accounting are each served by a thread of their own (see
`ztsim.datagram`). Accounting could be read on the event loop instead, but it would
then need a second receive path and a second way to stop; on its own thread it also
never holds up the loop's tasks (reloads, revocation, the writer) while the core
works. Both take the core's lock once per batch of datagrams, so the core sees one
datagram at a time, as the event loop's own tasks do. Bad input never raises out of
here: the core drops and counts it, and an unexpected error is logged and the
datagram dropped.

An Accounting-Response waits for its records' commit (`AfterCommit`): the endpoint
sends nothing for it, calls `wake` once per batch that left such a reply (the writer
starts a commit at once), and the service sends a commit's replies with `send_acct_many`
after the commit, from the writer's thread: one sendmmsg(2) per up to `REPLY_SLOTS`
replies (`AcctReplies`). That saves little CPU (the kernel's per-datagram work is most
of a send) but one GIL release and re-take per reply: with the accounting thread busy,
each re-take waited for it. With an accounting journal (`journal`), the endpoint instead
appends the batch's requests to it before the core's lock is let go, and sends their
replies itself at once (`AaaCore.journaled`); those the journal cannot take wait for the
commit as above. Stopping is in two steps so that the last commit's replies
still go out from the accounting port: `stop_serving` ends both receiving threads,
`close` then closes the socket the replies leave by.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import socket
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ztsim.clock import Clock
from ztsim.datagram import Answer, DatagramServer, Peer, bind_udp
from ztsim.mmsg import SLOT, Iovec, Mmsghdr, batch_calls
from ztsim.radius.aaa.traffic import AfterCommit
from ztsim.radius.serve.journal import Journal, framed, record_head

REPLY_SLOTS = 64  # replies per sendmmsg(2); a larger commit takes several calls
_HDR, _IOV, _NAME = ctypes.sizeof(Mmsghdr), ctypes.sizeof(Iovec), 32  # sockaddr_in6: 28
# iov_len, a size_t: 8 octets, as `batch_calls` requires; counted in such words.
_IOV_WORDS, _IOV_LEN_WORD = _IOV // 8, Iovec.iov_len.offset // 8
# struct sockaddr_in / sockaddr_in6 (netinet/in.h): the family in host order, the port
# already swapped by htons, the address in network order.
_SOCKADDR_IN = struct.Struct("=HH4s8x")
_SOCKADDR_IN6 = struct.Struct("=HHI16sI")


class AcctReplies:
    """Sends many datagrams to their own peers from one socket in one sendmmsg(2) call
    (`ztsim.mmsg` answers the senders of a received batch; these peers are the senders
    of several). Where the system has no sendmmsg, one sendto(2) each."""

    def __init__(self, sock: socket.socket, *, batched: bool = True) -> None:
        self._sock = sock
        calls = batch_calls() if batched else None
        self._send = None if calls is None else calls[1]
        self._v6 = sock.family == socket.AF_INET6
        self._lock = threading.Lock()  # the buffers are shared by whoever sends
        self._hdrs = bytearray(REPLY_SLOTS * _HDR)
        self._iovs = bytearray(REPLY_SLOTS * _IOV)
        self._names = bytearray(REPLY_SLOTS * _NAME)
        self._data = bytearray(REPLY_SLOTS * SLOT)
        hdrs, iovs, names, data = (
            ctypes.addressof((ctypes.c_char * len(b)).from_buffer(b))
            for b in (self._hdrs, self._iovs, self._names, self._data)
        )
        for slot in range(REPLY_SLOTS):
            iov = Iovec.from_buffer(self._iovs, slot * _IOV)
            iov.iov_base = data + slot * SLOT
            header = Mmsghdr.from_buffer(self._hdrs, slot * _HDR).msg_hdr
            header.msg_name = names + slot * _NAME
            header.msg_iov, header.msg_iovlen = iovs + slot * _IOV, 1
            header.msg_namelen = _SOCKADDR_IN6.size if self._v6 else _SOCKADDR_IN.size
        self._base = hdrs
        self._lengths = memoryview(self._iovs).cast("Q")  # the iov_len words
        self._sockaddrs: dict[Peer, bytes] = {}  # peer -> its sockaddr, bounded

    def send(self, replies: Sequence[tuple[bytes, Peer]]) -> int:
        """Send each reply to its peer; how many could not be sent (UDP: peers retry)."""
        if self._send is None:
            return sum(not self._send_one(reply, peer) for reply, peer in replies)
        failed = 0
        with self._lock:
            for start in range(0, len(replies), REPLY_SLOTS):
                failed += self._send_chunk(replies[start : start + REPLY_SLOTS])
        return failed

    def _send_chunk(self, replies: Sequence[tuple[bytes, Peer]]) -> int:
        assert self._send is not None
        failed = queued = 0
        names, lengths, data, sockaddrs = self._names, self._lengths, self._data, self._sockaddrs
        for reply, peer in replies:
            size = len(reply)
            name = sockaddrs.get(peer)
            if name is None:
                try:
                    name = self._sockaddr(peer)
                except OSError:
                    failed += 1  # not an address of this socket's family
                    continue
            if size > SLOT:
                failed += not self._send_one(reply, peer)
                continue
            names[queued * _NAME : (queued + 1) * _NAME] = name
            lengths[queued * _IOV_WORDS + _IOV_LEN_WORD] = size
            data[queued * SLOT : queued * SLOT + size] = reply
            queued += 1
        done = 0
        while done < queued:
            sent = self._send(self._sock.fileno(), self._base + done * _HDR, queued - done, 0)
            if sent > 0:
                done += sent
            elif ctypes.get_errno() != errno.EINTR:
                done += 1  # this reply's error (e.g. a full buffer): skip it, send the rest
                failed += 1
        return failed

    def _sockaddr(self, peer: Peer) -> bytes:
        # Packed once per peer (a gateway's few source ports): per reply only a copy.
        host, port = peer
        if self._v6:
            address = socket.inet_pton(socket.AF_INET6, host)
            name = _SOCKADDR_IN6.pack(socket.AF_INET6, socket.htons(port), 0, address, 0)
        else:
            address = socket.inet_pton(socket.AF_INET, host)
            name = _SOCKADDR_IN.pack(socket.AF_INET, socket.htons(port), address)
        if len(self._sockaddrs) >= 65536:
            self._sockaddrs.clear()
        name = name.ljust(_NAME, b"\0")
        self._sockaddrs[peer] = name
        return name

    def _send_one(self, reply: bytes, peer: Peer) -> bool:
        try:
            self._sock.sendto(reply, peer)
        except OSError:
            return False
        return True


class Core(Protocol):
    """What the endpoints need of `AaaCore`."""

    @property
    def clock(self) -> Clock: ...

    def handle_auth(self, datagram: bytes, peer: Peer, now: datetime) -> bytes | None: ...

    def handle_acct(
        self, datagram: bytes, peer: Peer, now: datetime
    ) -> bytes | AfterCommit | None: ...

    def may_journal(self) -> bool: ...

    def journaled(self, afters: list[AfterCommit]) -> list[AfterCommit]: ...

    def unjournaled(self, afters: list[AfterCommit]) -> None: ...


@dataclass
class RadiusServer:
    auth: DatagramServer
    acct: DatagramServer
    # The accounting socket, duplicated: replies sent after a commit leave by it, also
    # once `stop_serving` has closed the serving thread's own descriptor.
    acct_replies: socket.socket
    acct_send_failures: int = 0
    batched: bool = True
    # The sender of `acct_replies`, if the accounting thread sends by it too.
    sender: AcctReplies | None = None

    def __post_init__(self) -> None:
        self._replies = self.sender or AcctReplies(self.acct_replies, batched=self.batched)

    @property
    def auth_port(self) -> int:
        return self.auth.port

    @property
    def acct_port(self) -> int:
        return self.acct.port

    def send_acct(self, reply: bytes, peer: Peer) -> None:
        """Send an Accounting-Response that waited for its commit; from any thread."""
        try:
            self.acct_replies.sendto(reply, peer)
        except OSError:
            self.acct_send_failures += 1  # UDP promises nothing: the gateway retransmits

    def send_acct_many(self, replies: Sequence[tuple[bytes, Peer]]) -> None:
        """Send a commit's Accounting-Responses, in one system call per `REPLY_SLOTS`;
        from any thread."""
        try:
            self.acct_send_failures += self._replies.send(replies)
        except OSError:  # the socket is closed: stopping
            self.acct_send_failures += len(replies)

    def stop_serving(self) -> None:
        """No more requests; `send_acct` works until `close`."""
        self.auth.close()
        self.acct.close()

    def close(self) -> None:
        self.stop_serving()
        self.acct_replies.close()


def _auth_batches(
    core: Core, lock: AbstractContextManager[object]
) -> Callable[[], AbstractContextManager[Answer]]:
    handle = core.handle_auth

    @contextlib.contextmanager
    def batch() -> Iterator[Answer]:
        with lock:
            # Read once per batch: the datagrams of one system call share their time.
            now = core.clock()
            yield lambda data, peer: handle(data, peer, now)

    return batch


def _acct_batches(
    core: Core,
    lock: AbstractContextManager[object],
    wake: Callable[[], None],
    journal: Journal | None,
    sender: AcctReplies,
) -> Callable[[], AbstractContextManager[Answer]]:
    handle = core.handle_acct

    @contextlib.contextmanager
    def batch() -> Iterator[Answer]:
        waiting = False
        records: list[bytes] = []
        afters: list[AfterCommit] = []
        sent: list[AfterCommit] = []
        heads: dict[Peer, bytes] = {}  # a gateway's few source ports

        def answer(datagram: bytes, peer: Peer) -> bytes | None:
            nonlocal waiting
            reply = handle(datagram, peer, now)
            if isinstance(reply, AfterCommit):
                waiting = True
                if journal is not None:
                    head = heads.get(peer)
                    if head is None:
                        head = heads[peer] = record_head(peer, now)
                    records.append(framed(head, datagram))
                    afters.append(reply)
                return None
            return reply

        with lock:
            # As for authentication: the datagrams of one system call share their time.
            now = core.clock()
            yield answer
            # Under the lock, so that a batch taken for a commit has the records of every
            # request its journal mark covers (`Journal.mark`), and no others.
            if journal is not None and records:
                if core.may_journal() and journal.append(records):
                    sent = core.journaled(afters)
                else:
                    core.unjournaled(afters)
        if sent:
            with contextlib.suppress(OSError):  # closed: stopping; the gateway retransmits
                sender.send([(after.reply, after.peer) for after in sent])
        if waiting:
            wake()  # the sessions reach the other planes with their commit

    return batch


async def start_server(
    core: Core,
    lock: AbstractContextManager[object],
    host: str,
    auth_port: int,
    acct_port: int,
    *,
    batched: bool = True,
    wake: Callable[[], None] = lambda: None,
    journal: Journal | None = None,
) -> RadiusServer:
    """Bind the authentication and accounting endpoints (port 0 picks a free port) and
    serve them; `batched`: datagrams over recvmmsg/sendmmsg where the system has them;
    `wake`: called when accounting replies wait for a commit; `journal`: where accounting
    is made durable before its commit (else it is answered after its commit)."""
    acct_socket = bind_udp(host, acct_port)
    try:
        auth_socket = bind_udp(host, auth_port)
    except OSError:
        acct_socket.close()
        raise
    try:
        replies = acct_socket.dup()
    except OSError:
        acct_socket.close()
        auth_socket.close()
        raise
    auth = DatagramServer(
        auth_socket, _auth_batches(core, lock), name="radius-auth", batched=batched
    )
    sender = AcctReplies(replies, batched=batched)
    acct = DatagramServer(
        acct_socket,
        _acct_batches(core, lock, wake, journal, sender),
        name="radius-acct",
        batched=batched,
    )
    auth.start()
    acct.start()
    return RadiusServer(auth, acct, replies, batched=batched, sender=sender)
