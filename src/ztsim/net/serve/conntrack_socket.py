"""The conntrack listener's I/O: a netlink socket in the event groups, one reader thread.

`open_conntrack()` opens an AF_NETLINK / NETLINK_NETFILTER socket in the calling
thread's network namespace (conntrack is per namespace: the role opens it from inside
the gateway's, `ztsim.net.netns.in_namespace_of`) and joins NFNLGRP_CONNTRACK_NEW and
NFNLGRP_CONNTRACK_DESTROY (NETLINK_ADD_MEMBERSHIP; joining needs CAP_NET_ADMIN there:
a refusal is an OSError at once). Unlike an NFLOG group, any number of sockets may
listen. `enable_accounting()` turns on the counters and timestamps the events carry,
for entries created from then on.

`ConntrackReader(sock, handler)` is the thread (`netlink_reader.NetlinkReader`, shared
with NFLOG): it polls the socket and a wake-up pipe, parses each datagram
(`ztsim.net.ctnetlink.parse`) and hands each NEW and DESTROY event to `handler`. Nothing
stops it but `stop`: datagrams that do not parse, datagrams from anything but the kernel,
a handler that raises are counted in `counts`, and reading goes on. Events carry no
sequence numbers: the kernel's only sign of a loss is ENOBUFS
on the next receive (the buffer overflowed; how many events went is unknown), counted
as `overrun`. A 4 MiB buffer holds some 15,000 events.

`ConntrackListener(handler, prefix)` is what the audit holds: a reader that exists only
while it is wanted (`want(True)`: some org logs allowed flows), opened with accounting
on in the namespace `prefix` enters, closed by `want(False)`. Every event of a
namespace's flows costs the kernel a message and this process a parse, so nobody
listens while nobody's mode asks for it. A failed opening is logged once per streak,
counted, and tried again when asked, no sooner than `retry_seconds` after the last try
(opening enters the namespace: a process under the prefix). Its `counts` add up the
readers' counts over every opening, with `opened`, `closed` and `open_failed`.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from ztsim.net.ctnetlink import (
    EVENT_GROUPS,
    NETLINK_ADD_MEMBERSHIP,
    SOL_NETLINK,
    ConntrackError,
    ConntrackEvent,
    Kind,
    parse,
)
from ztsim.net.netns import in_namespace_of
from ztsim.net.serve.netlink_reader import NetlinkReader, open_netfilter

_log = logging.getLogger(__name__)

_BUFFER = 1 << 16  # one datagram: events come one per message, a few hundred octets each
_BATCH = 256  # datagrams per wake-up, then the stop flag is looked at again
RETRY_SECONDS = 5.0  # a failed opening is tried again no sooner than this
_SYSCTLS = (  # per network namespace; they apply to entries created after they are set
    "/proc/sys/net/netfilter/nf_conntrack_acct",  # packets and bytes each way
    "/proc/sys/net/netfilter/nf_conntrack_timestamp",  # start and stop times
)


def open_conntrack(groups: tuple[int, ...] = EVENT_GROUPS) -> socket.socket:
    """A non-blocking socket that receives the conntrack events of `groups` in the
    calling thread's namespace; OSError (EPERM) without CAP_NET_ADMIN there."""

    def join(sock: socket.socket) -> None:
        for group in groups:  # one by one: NETLINK_ADD_MEMBERSHIP takes a group number
            sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)

    return open_netfilter(join)


def enable_accounting() -> None:
    """nf_conntrack_acct=1 and nf_conntrack_timestamp=1 in the calling thread's
    namespace (/proc/sys/net shows the namespace of the thread that opens it)."""
    for path in _SYSCTLS:
        with open(path, "w", encoding="ascii") as sysctl:
            sysctl.write("1\n")


class ConntrackReader(NetlinkReader[ConntrackEvent]):
    """Reads a conntrack event socket in a thread and calls `handler` with each NEW and
    DESTROY event, in the kernel's order. Owns the socket: `stop` closes it. `counts`:
    received, malformed, foreign, overrun, handler_failed, ignored (read by metrics)."""

    def __init__(self, sock: socket.socket, handler: Callable[[ConntrackEvent], None]) -> None:
        super().__init__(
            sock,
            self._events,
            handler,
            label="conntrack",
            malformed=ConntrackError,
            buffer_size=_BUFFER,
            batch=_BATCH,
            log=_log,
        )

    def _events(self, data: bytes) -> list[ConntrackEvent]:
        events = [m for m in parse(data) if isinstance(m, ConntrackEvent)]
        wanted = [e for e in events if e.kind in (Kind.NEW, Kind.DESTROY)]
        if len(wanted) < len(events):  # no key before the first: `counts` as it was
            self.counts["ignored"] += len(events) - len(wanted)
        return wanted


class ConntrackListener:
    """A `ConntrackReader` for `handler` in the namespace `prefix` enters, open only while
    wanted. Thread-safe; `want` and `close` may block while a reader's thread ends."""

    def __init__(
        self,
        handler: Callable[[ConntrackEvent], None],
        prefix: Sequence[str] = (),
        *,
        monotonic: Callable[[], float] = time.monotonic,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self._handler = handler
        self._prefix = tuple(prefix)
        self._monotonic = monotonic
        self._retry_seconds = retry_seconds
        self._lock = threading.Lock()  # one opening or closing at a time
        self._reader: ConntrackReader | None = None
        self._failed_at: float | None = None  # the last failed opening; None: none since
        self._past: Counter[str] = Counter()  # closed readers' counts, and the openings
        self._counting = threading.Lock()  # `_past`: metrics read it while `want` waits

    @property
    def listening(self) -> bool:
        return self._reader is not None

    def want(self, wanted: bool, *, strict: bool = False) -> bool:
        """Open the reader (wanted) or close it; whether it is open now. A failed opening
        raises (OSError, ConntrackError) when `strict`, else is logged and counted, and
        the next `want(True)` within `retry_seconds` does not try again."""
        with self._lock:
            if not wanted:
                self._close()
                self._failed_at = None
                return False
            if self._reader is not None:
                return True
            now = self._monotonic()
            if (
                not strict
                and self._failed_at is not None
                and now - self._failed_at < self._retry_seconds
            ):
                return False
            try:
                sock = in_namespace_of(self._prefix, self._open)
            except (OSError, ConntrackError) as exc:
                self._count({"open_failed": 1})
                if strict:
                    raise
                if self._failed_at is None:  # once per streak: the counter says the rest
                    _log.warning("conntrack: the listener could not be opened: %s", exc)
                self._failed_at = now
                return False
            if self._failed_at is not None:
                _log.warning("conntrack: the listener is open again")
            self._failed_at = None
            reader = ConntrackReader(sock, self._handler)
            reader.start()
            with self._counting:
                self._reader = reader
                self._past["opened"] += 1
            return True

    def _open(self) -> socket.socket:
        enable_accounting()  # before the socket: the entries it will hear of carry counters
        return open_conntrack()

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        reader = self._reader
        if reader is not None:
            reader.stop()  # its thread has ended: no handler call after this
            with self._counting:  # its counts move to the past at once: no counter goes down
                self._past.update({**reader.counts, "closed": 1})
                self._reader = None

    def _count(self, more: dict[str, int]) -> None:
        with self._counting:
            self._past.update(more)

    @property
    def counts(self) -> dict[str, int]:
        with self._counting:
            total = Counter(self._past)
            reader = self._reader
        if reader is not None:
            total.update(dict(reader.counts))
        return dict(total)
