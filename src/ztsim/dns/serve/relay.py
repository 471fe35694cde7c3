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
to a worker's request for a read now (one byte, worker to parent: `late`). The answer
follows the patches of that read on the same stream, so a worker that gets it has
installed them. Pickles come from this worker's own parent, over a socket pair made before
the fork: no one else can write to it.

A worker that has ended is dropped at the first failed send; a worker whose parent ended
keeps serving its last table, and says how long since (`lag_seconds`).
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

log = logging.getLogger("ztsim.dns")

_LENGTH = struct.Struct(">I")
REQUEST = b"r"
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
            for each in self._links:
                selector.register(each.sock, selectors.EVENT_READ, each)
            while not self._stopping.is_set() and selector.get_map():
                for key, _ in selector.select(timeout=0.5):
                    link: _Link = key.data
                    try:
                        data = link.sock.recv(4096)
                    except OSError:
                        data = b""
                    if not data:  # the worker ended
                        selector.unregister(link.sock)
                        link.open = False
                        continue
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
    ) -> None:
        self.sock = sock
        self.deliver = deliver
        self._clock = clock
        self._lock = threading.Lock()
        # At most one request in flight, and one more asked meanwhile: it is sent once the
        # first is answered, so the read that answers it starts after it was asked.
        self._in_flight: Future[bool] | None = None
        self._queued: Future[bool] | None = None
        self._failed_at: float | None = None  # the last answer said the read failed
        self._lost_at: float | None = None  # the parent's end closed
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dns-relayed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
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
        # On failure the reader sees the end too, and settles what is waiting.
        with contextlib.suppress(OSError):
            self.sock.sendall(REQUEST)

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
