"""A lean RADIUS load generator: a gateway's request stream without a client's costs.

radclient tops out near 10,000 requests per second on one core here (it walks its
list of unfinished requests after every batch it sends), below what the servers
under test can answer, so a rate measured with it is partly radclient's. This
generator does the per-request work ahead of time: `precompute` builds every
datagram, authenticators included (an Access-Request's random Request Authenticator
and its Message-Authenticator, RFC 2865 §3 and RFC 3579 §3.2; an
Accounting-Request's MD5 Request Authenticator, RFC 2866 §3), so the timed loop only
copies pointers into sendmmsg(2) and reads two octets (Code, Identifier) of each
reply that recvmmsg(2) hands back.

Windowed, as a gateway is: at most `window` requests are unanswered at a time.
Request i carries Identifier i mod 256 and goes out on socket (i div 256) mod k, or on
another where that Identifier is free: k sockets (each its own source port, connected
to the server, one more than the window needs) give 256 identifiers each, and a reply
is matched by (socket, Identifier). A request unanswered after `timeout` is counted
lost and frees its identifier; nothing is retried. Bounded by
the number of requests and by `deadline`. `LoadResult.client_cpu` is this process's
own CPU time over the run, so a benchmark can show the generator was not the limit.
"""

from __future__ import annotations

import ctypes
import errno
import math
import os
import select
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ztsim.errors import InvalidInput
from ztsim.mmsg import Iovec, Mmsghdr, batch_calls
from ztsim.radius import Attribute, Code, Packet, SharedSecret, sign_request

IDENTIFIERS = 256  # RFC 2865 §3: the Identifier is one octet
BATCH = 64  # datagrams per sendmmsg/recvmmsg call
_SLOT = 4096  # RFC 2865 §3: a RADIUS packet is at most 4096 octets
_MSG_DONTWAIT = 0x40  # linux/socket.h
_ANSWER_CODES = {
    Code.ACCESS_REQUEST: (Code.ACCESS_ACCEPT, Code.ACCESS_REJECT, Code.ACCESS_CHALLENGE),
    Code.ACCOUNTING_REQUEST: (Code.ACCOUNTING_RESPONSE,),
}


_LEN_WORD = Mmsghdr.msg_len.offset // 4
_HDR_WORDS = ctypes.sizeof(Mmsghdr) // 4


@dataclass(frozen=True)
class LoadResult:
    """What one run did. `accepted` counts Access-Accepts and Accounting-Responses."""

    sent: int
    answered: int
    accepted: int
    lost: int
    elapsed: float  # seconds, first send to last answer or loss
    client_cpu: float  # seconds of this process's CPU time over the run

    @property
    def rps(self) -> float:
        """Answered requests per second."""
        return self.answered / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def client_cpu_us(self) -> float:
        """The generator's CPU microseconds per request sent."""
        return self.client_cpu / self.sent * 1e6 if self.sent else 0.0


def precompute(
    code: Code,
    requests: Sequence[Sequence[Attribute]],
    secret: SharedSecret,
    *,
    nonce: Callable[[int], bytes] = os.urandom,
) -> list[bytes]:
    """Request n of `requests` as a signed datagram with Identifier n mod 256. Access-
    Requests get a fresh Request Authenticator from `nonce` and a Message-Authenticator
    (the BlastRADIUS defence, RFC 3579 §3.2); Accounting-Requests the hashed one."""
    if code not in _ANSWER_CODES:
        raise InvalidInput(f"no load for {code.name}: Access- or Accounting-Request only")
    access = code == Code.ACCESS_REQUEST
    out = []
    for n, attributes in enumerate(requests):
        authenticator = nonce(16) if access else bytes(16)
        packet = Packet(code, n % IDENTIFIERS, authenticator, tuple(attributes))
        out.append(sign_request(packet, secret, add_message_authenticator=access).encode())
    return out


class _Ring:
    """One connected socket's sendmmsg and recvmmsg arrays (BATCH entries each)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.out = (Mmsghdr * BATCH)()
        self.out_iovs = (Iovec * BATCH)()
        self.inn = (Mmsghdr * BATCH)()
        self.in_iovs = (Iovec * BATCH)()
        self.in_data = ctypes.create_string_buffer(BATCH * _SLOT)
        data = ctypes.addressof(self.in_data)
        for k in range(BATCH):
            self.in_iovs[k].iov_base, self.in_iovs[k].iov_len = data + k * _SLOT, _SLOT
            self.inn[k].msg_hdr.msg_iov = ctypes.addressof(self.in_iovs[k])
            self.inn[k].msg_hdr.msg_iovlen = 1
            self.out[k].msg_hdr.msg_iov = ctypes.addressof(self.out_iovs[k])
            self.out[k].msg_hdr.msg_iovlen = 1
        # Pointer and length of each outgoing iovec, written per batch as plain integers.
        self.out_words = memoryview(self.out_iovs).cast("B").cast("Q")
        self.in_words = memoryview(self.inn).cast("B").cast("I")
        self.in_view = memoryview(self.in_data).cast("B")


class RadiusLoad:
    """Sends `datagrams` (from `precompute`) to `server`, `window` at a time."""

    def __init__(
        self,
        server: tuple[str, int],
        datagrams: Sequence[bytes],
        *,
        window: int = 200,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        calls = batch_calls()
        if calls is None:
            raise InvalidInput("the lean load needs Linux recvmmsg/sendmmsg")
        if not datagrams or window < 1 or timeout <= 0:
            raise InvalidInput("needs datagrams, a window of at least 1 and a timeout")
        if any(d[1] != n % IDENTIFIERS for n, d in enumerate(datagrams)):
            raise InvalidInput("datagram n must carry Identifier n mod 256 (see precompute)")
        self._recv, self._send = calls
        self._server, self._window, self._timeout, self._clock = server, window, timeout, clock
        self._blob = b"".join(datagrams)  # kept alive: the iovecs point into it
        base = ctypes.cast(ctypes.c_char_p(self._blob), ctypes.c_void_p).value or 0
        offsets, at = [], 0
        for d in datagrams:
            offsets.append(base + at)
            at += len(d)
        self._addresses = offsets
        self._lengths = [len(d) for d in datagrams]
        self._code = datagrams[0][0]

    def run(self, count: int | None = None, *, deadline: float = 60.0) -> LoadResult:
        """Send `count` requests (all the datagrams by default) and wait for each answer
        or its timeout, for `deadline` seconds at most."""
        count = len(self._lengths) if count is None else count
        if count > len(self._lengths):
            # Sent twice from one source port, a request is a retransmission to the server.
            raise InvalidInput("count is more than the precomputed datagrams")
        # One socket more than the window needs: a request waiting out its timeout holds
        # its identifier on one socket only, and the next with that identifier takes
        # another instead of stalling the load behind it.
        sockets = math.ceil(min(self._window, count) / IDENTIFIERS) + 1
        family = socket.AF_INET6 if ":" in self._server[0] else socket.AF_INET
        socks = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(sockets)]
        try:
            for s in socks:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
                s.connect(self._server)
                s.setblocking(False)
            return self._drive([_Ring(s) for s in socks], count, deadline)
        finally:
            for s in socks:
                s.close()

    def _drive(self, rings: list[_Ring], count: int, deadline: float) -> LoadResult:
        clock, timeout = self._clock, self._timeout
        pending: dict[int, int] = {}  # socket * 256 + Identifier -> request number
        state = bytearray(count)  # per request: 0 not sent, 1 waiting, 2 answered or lost
        # Send order: (time, request number, its socket * 256 + Identifier).
        sent_at: deque[tuple[float, int, int]] = deque()
        answered = accepted = lost = sent = 0
        accept = _ANSWER_CODES[Code(self._code)][0]
        poller = select.epoll()
        by_fd = {r.fd: n for n, r in enumerate(rings)}
        for r in rings:
            poller.register(r.fd, select.EPOLLIN)
        cpu0, start = time.process_time(), clock()
        end = last = start
        end += deadline
        try:
            while (sent < count or pending) and last < end:
                before = sent
                if sent < count and len(pending) < self._window:
                    sent = self._fill(rings, pending, state, sent_at, sent, count, last)
                # Block for answers unless requests just went out (more may follow at once);
                # a spinning generator would report CPU that is not the load's.
                wait = 0.0 if sent > before else min(0.05, max(0.0, end - last))
                for fd, _ in poller.poll(wait):
                    n = by_fd[fd]
                    for reply in self._drain(rings[n]):
                        i = pending.pop(n * IDENTIFIERS + (reply >> 8), -1)
                        if i >= 0:
                            state[i] = 2
                            answered += 1
                            accepted += (reply & 0xFF) == accept
                last = clock()
                # Oldest first; answered ones are dropped as they come to the front.
                while sent_at and (state[sent_at[0][1]] == 2 or sent_at[0][0] + timeout <= last):
                    _, i, key = sent_at.popleft()
                    if state[i] == 1:
                        del pending[key]
                        state[i] = 2
                        lost += 1
        finally:
            poller.close()
        lost += len(pending)
        return LoadResult(sent, answered, accepted, lost, last - start, time.process_time() - cpu0)

    def _fill(
        self,
        rings: list[_Ring],
        pending: dict[int, int],
        state: bytearray,
        sent_at: deque[tuple[float, int, int]],
        sent: int,
        count: int,
        now: float,
    ) -> int:
        """Send the next requests the window and free identifiers allow, a sendmmsg per
        run of them on one socket; the new number sent."""
        k, room = len(rings), self._window - len(pending)
        run: list[int] = []  # request numbers queued on socket `on`
        on = -1
        i = sent
        while True:
            n = -1
            if room > len(run) and i < count:
                ident = i % IDENTIFIERS
                n = (i // IDENTIFIERS) % k
                if n * IDENTIFIERS + ident in pending:
                    n = next((m for m in range(k) if m * IDENTIFIERS + ident not in pending), -1)
            if run and (n != on or len(run) == BATCH):
                done = self._send_run(rings[on], run)
                for j in run[:done]:
                    key = on * IDENTIFIERS + j % IDENTIFIERS
                    pending[key] = j
                    state[j] = 1
                    sent_at.append((now, j, key))
                sent += done
                room -= done
                if done < len(run):
                    return sent  # the send buffer is full: the rest after the next answers
                run = []
                continue  # decide request i again, with the run sent
            if n < 0:
                return sent  # window full, all sent, or its identifier busy everywhere
            on = n
            run.append(i)
            i += 1

    def _send_run(self, ring: _Ring, run: list[int]) -> int:
        """sendmmsg the precomputed datagrams of `run` on `ring`; how many went."""
        words = ring.out_words
        for slot, i in enumerate(run):
            words[2 * slot] = self._addresses[i]
            words[2 * slot + 1] = self._lengths[i]
        done = int(self._send(ring.fd, ctypes.addressof(ring.out), len(run), 0))
        if done < 0:
            code = ctypes.get_errno()
            if code not in (errno.EAGAIN, errno.EINTR, errno.ENOBUFS):
                raise OSError(code, os.strerror(code))
            return 0
        return done

    def _drain(self, ring: _Ring) -> list[int]:
        """Every reply waiting on `ring`'s socket, as Identifier << 8 | Code."""
        out: list[int] = []
        view, words = ring.in_view, ring.in_words
        while True:
            got = self._recv(ring.fd, ctypes.addressof(ring.inn), BATCH, _MSG_DONTWAIT, None)
            if got <= 0:
                return out  # EAGAIN: nothing more for now (or an ICMP error, dropped)
            lengths = words[_LEN_WORD::_HDR_WORDS][:got].tolist()
            for slot in range(got):
                if lengths[slot] >= 20:  # RFC 2865 §3: the header is 20 octets
                    at = slot * _SLOT
                    out.append(view[at + 1] << 8 | view[at])
            if got < BATCH:
                return out
