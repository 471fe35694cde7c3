"""One feed reader per host: a forking parent relays its identity table's patches to its
workers over a socket pair each.

Every worker following the feed itself would multiply the database's work by the number of
workers (each read, each re-read of the keys a change names) for results that are the same
in every worker: they all start from the table the parent loaded before forking. So the
parent follows the feed, patches its own copy (whose indexes tell which addresses a change
touches) and sends each patch, in order, to every worker, which installs it
(`IdentityTable.install`). A worker's table is its parent's after the same patches.

Frames are a 4-byte length and a pickle, parent to worker only: ("patch", seq, dns_seen,
TablePatch), ("full", seq, dns_seen, FullTable) after a resync, and ("read", ok), the answer
to a worker's request for a read now (`late`). The answer follows the patches of that read
on the same stream, so a worker that gets it has installed them. Pickles go one way only,
from this worker's own parent, over a socket pair made before the fork: no one else can
write to it. The other way, a worker sends a length, one type octet and no pickle: a read
request, or its metrics every second as JSON (`ztsim.metrics.wire`), which the parent
merges and serves for the host: a worker parses untrusted packets, so what it says is
decoded as data, never as objects.

A worker that has ended is dropped at the first failed send. A worker whose parent's
stream ends (the parent crashed) or whose patch cannot be installed is told (`on_lost`)
and stops: no change would reach its table any more, and a suspended SIM would go on
being answered. (A database outage is another matter: the parent keeps its stream and
the host serves its last state, with `ztsim_feed_lag_seconds` growing.)
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from ztsim.metrics import wire
from ztsim.metrics.registry import Family

log = logging.getLogger("ztsim.dns")

_LENGTH = struct.Struct(">I")
REQUEST = b"r"  # worker to parent: a read now, please
METRICS = b"m"  # worker to parent: its metrics (JSON)
MAX_UPSTREAM_FRAME = 1 << 20  # a worker's frame; past it the link is dropped
# After a read failed (the database is down), a worker asks again at most this often: the
# late sources then answer at once instead of waiting for a read that would fail too.
RETRY_SECONDS = 1.0

Message = tuple[Any, ...]


class _Link:
    """The parent's end of one worker's socket pair."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()  # the follower and the request thread both send
        self.open = True
        self.inbox = bytearray()  # what the worker sent, up to a whole frame

    def frames(self, data: bytes) -> list[tuple[bytes, bytes]]:
        """(type, payload) of each whole frame now in the inbox."""
        inbox = self.inbox
        inbox += data
        found = []
        while len(inbox) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(inbox)
            if not 1 <= size <= MAX_UPSTREAM_FRAME:
                raise ValueError("a worker's frame is empty or too large")
            if len(inbox) < _LENGTH.size + size:
                break
            frame = bytes(inbox[_LENGTH.size : _LENGTH.size + size])
            del inbox[: _LENGTH.size + size]
            found.append((frame[:1], frame[1:]))
        return found

    def send(self, frame: bytes) -> bool:
        with self.lock:
            if not self.open:
                return False
            try:
                self.sock.sendall(frame)
            except OSError:
                self.open = False
            return self.open


def _frame(message: Message) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def _answer(link: _Link) -> Callable[[Future[bool]], None]:
    def answer(read: Future[bool]) -> None:
        link.send(_frame(("read", read.result())))

    return answer


class RelayHub:
    """The parent: `send` to every worker; `serve_requests` answers their read requests."""

    def __init__(self, socks: list[socket.socket]) -> None:
        self._links = [_Link(s) for s in socks]
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._reported: dict[int, tuple[Family, ...]] = {}  # each worker's last metrics

    def worker_metrics(self) -> dict[str, tuple[Family, ...]]:
        """The last metrics each live worker sent, by worker ("worker-0", ...)."""
        return {f"worker-{i}": families for i, families in list(self._reported.items())}

    @property
    def workers(self) -> int:
        """Workers still reachable."""
        return sum(link.open for link in self._links)

    def send(self, message: Message) -> None:
        """To every worker, in the order of calls (one pickle for all)."""
        frame = _frame(message)
        for link in self._links:
            link.send(frame)

    def serve_requests(self, read_now: Callable[[], Future[bool]]) -> None:
        """Answer each worker's requests with a read that starts after them (a thread)."""
        self._thread = threading.Thread(
            target=self._serve, args=(read_now,), name="dns-relay", daemon=True
        )
        self._thread.start()

    def _serve(self, read_now: Callable[[], Future[bool]]) -> None:
        with selectors.DefaultSelector() as selector:
            for index, each in enumerate(self._links):
                selector.register(each.sock, selectors.EVENT_READ, (index, each))
            while not self._stopping.is_set() and selector.get_map():
                for key, _ in selector.select(timeout=0.5):
                    index, link = key.data
                    try:
                        data = link.sock.recv(65536)
                        frames = link.frames(data) if data else None
                    except (OSError, ValueError):
                        frames = None
                    if frames is None:  # the worker ended (or spoke nonsense): let it go
                        selector.unregister(link.sock)
                        link.open = False
                        self._reported.pop(index, None)
                        continue
                    self._take(index, link, frames, read_now)

    def _take(
        self,
        index: int,
        link: _Link,
        frames: list[tuple[bytes, bytes]],
        read_now: Callable[[], Future[bool]],
    ) -> None:
        asked = False
        for kind, payload in frames:
            if kind == REQUEST:
                asked = True
            elif kind == METRICS:
                try:
                    self._reported[index] = wire.decode(payload)
                except ValueError:
                    log.warning("a DNS worker sent metrics that do not decode; ignored")
        if asked:
            # Several requests read at once share one read: each came before it.
            read_now().add_done_callback(_answer(link))

    def stop(self) -> None:
        self._stopping.set()
        for link in self._links:  # wakes the request thread's select
            with contextlib.suppress(OSError):
                link.sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(2.0)
        for link in self._links:
            with link.lock:
                link.open = False
                link.sock.close()


class RelayReceiver:
    """A worker: installs what its parent sends (`deliver`, on a thread of its own) and
    asks it for reads (`read_now`)."""

    def __init__(
        self,
        sock: socket.socket,
        deliver: Callable[[Message], None] = lambda _message: None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_lost: Callable[[], None] = lambda: None,
    ) -> None:
        """`on_lost`: called once if the parent's stream ends or a patch cannot be
        installed while this receiver was not being stopped (a worker then stops: it
        would serve a table no change reaches any more)."""
        self.sock = sock
        self.deliver = deliver
        self.on_lost = on_lost
        self._stopping = False
        self._clock = clock
        self._lock = threading.Lock()
        # At most one request in flight, and one more asked meanwhile: it is sent once the
        # first is answered, so the read that answers it starts after it was asked.
        self._in_flight: Future[bool] | None = None
        self._queued: Future[bool] | None = None
        self._failed_at: float | None = None  # the last answer said the read failed
        self._send_lock = threading.Lock()  # read requests and metrics share the socket
        self._lost_at: float | None = None  # the parent's end closed
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dns-relayed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        self.sock.close()

    @property
    def connected(self) -> bool:
        return self._lost_at is None

    def lag_seconds(self) -> float:
        """0 while the parent is there (it reports its own lag); since when it is not."""
        return 0.0 if self._lost_at is None else self._clock() - self._lost_at

    def readable(self) -> bool:
        """Whether a read asked for now is worth waiting for."""
        if self._lost_at is not None:
            return False
        failed = self._failed_at
        return failed is None or self._clock() - failed >= RETRY_SECONDS

    def read_now(self) -> Future[bool]:
        """A read of the feed by the parent that starts after this call; done (True) once
        its patches are installed here, False if it failed or the parent is gone."""
        with self._lock:
            if self._queued is not None:
                return self._queued
            future: Future[bool] = Future()
            if self._lost_at is not None:
                future.set_result(False)
            elif self._in_flight is None:
                self._in_flight = future
                self._request()
            else:
                self._queued = future
            return future

    def _request(self) -> None:
        self._send(REQUEST)

    def send_metrics(self, families: tuple[Family, ...] | list[Family]) -> None:
        """This worker's metrics, for its parent to serve with the others'."""
        self._send(METRICS, wire.encode(families))

    def _send(self, kind: bytes, payload: bytes = b"") -> None:
        frame = _LENGTH.pack(1 + len(payload)) + kind + payload
        # On failure the reader sees the end too, and settles what is waiting.
        with self._send_lock, contextlib.suppress(OSError):
            self.sock.sendall(frame)

    def _answered(self, ok: bool) -> None:
        with self._lock:
            done, self._in_flight = self._in_flight, self._queued
            self._queued = None
            if self._in_flight is not None:
                self._request()
        self._failed_at = None if ok else self._clock()
        if done is not None:
            done.set_result(ok)

    def _run(self) -> None:
        try:
            while (message := self._receive()) is not None:
                if message[0] == "read":
                    self._answered(bool(message[1]))
                else:
                    self.deliver(message)
        except Exception:  # a bug in `deliver`: the table stays as it was
            log.exception("applying the parent's identity patch failed")
        finally:
            self._lost_at = self._clock()
            with self._lock:
                waiting = [f for f in (self._in_flight, self._queued) if f is not None]
                self._in_flight = self._queued = None
            for future in waiting:
                future.set_result(False)
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)  # a parent still sending sees the end
            if not self._stopping:
                self.on_lost()

    def _receive(self) -> Message | None:
        head = self._exactly(_LENGTH.size)
        if head is None:
            return None
        data = self._exactly(_LENGTH.unpack(head)[0])
        if data is None:
            return None
        message: Message = pickle.loads(data)  # noqa: S301 - this worker's own parent
        return message

    def _exactly(self, size: int) -> bytes | None:
        chunks, left = [], size
        while left:
            try:
                chunk = self.sock.recv(min(left, 1 << 20))
            except OSError:
                return None
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
