"""Watching many hosts at once for the moment each acts on a change, from inside the
packet gateway's namespace: a thread that probes every open target (a DNS query from a
UE address, an Access-Request from the gateway's address) again and again until the
replies say the change is applied, and records when.

- "Applied" is the arrival time (`time.time()`) of the first satisfying reply of a run
  of `confirm` satisfying replies in a row; an unsatisfying reply starts the run again.
  Each DNS probe comes from a new source port, so the run spreads over a host's
  workers (SO_REUSEPORT picks one by the source): a host counts as applied when the
  workers answering the run all have.
- Probes repeat every 10 ms for the first 200 ms, then ever slower (`SCHEDULE`): fine
  resolution where the figures should be, and a bounded load where hosts are late (the
  probes are load too: on a small machine they would slow down what they measure), and
  a target has one probe in flight at most: a host slow to answer is asked less often,
  never flooded. A target still unapplied after `deadline` seconds is given up (lost).
  A target may ask for its own run length (`confirm`: 1 for a host of one process).
- One socket per probe (closed on its reply or after `PROBE_TIMEOUT`): a new source
  port each time, and no identifier space to run out of; a RADIUS reply is checked
  against its request. Round trips and timeouts are kept per host.
"""

from __future__ import annotations

import contextlib
import os
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ztsim.radius import Code, Packet, RadiusAuthError, RadiusDecodeError, SharedSecret
from ztsim.radius.auth import verify_reply

from support.netns_clients import (
    NOERROR,
    RADIUS_AUTH,
    DnsReply,
    Sim,
    access_request,
    dns_query,
    dns_reply,
)
from support.netns_hosts import enter_for_good
from support.scale_world import answer_version

# (age of the target below which, pause between its probes), in seconds.
SCHEDULE = ((0.2, 0.01), (1.0, 0.025), (3.0, 0.1), (float("inf"), 0.5))
PROBE_TIMEOUT = 1.0


def pause_at(age: float) -> float:
    return next(pause for below, pause in SCHEDULE if age < below)


@dataclass(frozen=True)
class Want:
    """What a satisfying reply says (plain data, so a target can cross to a process):
    "rcode" (a DNS reply with this RCODE), "version" (a DNS answer whose address is
    `rule_answer` of this version or a later one) or "code" (a RADIUS reply code)."""

    kind: str
    value: int

    def __call__(self, reply: object) -> bool:
        if self.kind == "code":
            return reply == self.value
        if not isinstance(reply, DnsReply):
            return False
        if self.kind == "rcode":
            return reply.rcode == self.value
        return (
            reply.rcode == NOERROR
            and bool(reply.addresses)
            and answer_version(reply.addresses[-1]) >= self.value
        )


@dataclass(eq=False)
class Target:
    """One host to watch for one change. `want` judges a reply: a `DnsReply` (DNS) or the
    reply's `Code` (RADIUS). `started`: when the change was about to be requested."""

    change: int
    host: str
    server: str
    want: Callable[[object], bool]
    source: str | None = None  # DNS: the UE address asking
    name: str = ""  # DNS: the name asked
    sim: Sim | None = None  # RADIUS: the SIM asking
    confirm: int = 0  # satisfying replies in a row that count; 0: the watcher's
    started: float = field(default_factory=time.time)
    applied_at: float | None = None
    lost: bool = False
    replies: int = 0  # how many came back (for a lost target: was it asked at all?)
    broken: int = 0  # runs broken: the host answered both ways (its workers disagree)
    last: object = None  # the last reply: what a lost target still said
    _run_from: float | None = None  # the run's first satisfying reply: when it came
    _run_sent: float = 0.0  # and when its probe left
    _run: int = 0
    _next: float = 0.0
    _waiting: bool = False  # a probe of it is in flight

    @property
    def open(self) -> bool:
        return self.applied_at is None and not self.lost


class Watcher:
    """`add` targets from any thread; `wait` until none is open."""

    def __init__(
        self,
        ns: str,
        nas_address: str,
        secret: str,
        *,
        confirm: int = 4,
        deadline: float = 10.0,
        on_done: Callable[[Target], None] | None = None,
    ) -> None:
        self.ns = ns
        self.on_done = on_done  # called on the watcher's thread as each target closes
        self.nas_address = nas_address
        self.secret = SharedSecret(secret)
        self.confirm = confirm
        self.deadline = deadline
        self.probes = 0
        self._incoming: queue.Queue[Target] = queue.Queue()
        self._open: list[Target] = []
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._selector = selectors.DefaultSelector()
        self._inflight: dict[socket.socket, tuple[Target, Callable[[bytes], Any], float]] = {}
        self.round_trips: dict[str, list[float]] = {}  # host -> seconds, of answered probes
        self.timeouts: dict[str, int] = {}  # host -> probes unanswered within PROBE_TIMEOUT
        self._thread = threading.Thread(target=self._main, name="watcher", daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def add(self, target: Target) -> None:
        self._incoming.put(target)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def wait(self, timeout: float) -> bool:
        """Until every target added so far is applied or lost; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._open or not self._incoming.empty():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.1))
        return True

    # -- the thread ---------------------------------------------------------------------

    def _main(self) -> None:
        enter_for_good(self.ns)  # every socket from here on is the gateway's
        try:
            while not self._stopping.is_set():
                self._step()
        finally:
            for sock in list(self._inflight):
                with contextlib.suppress(OSError):
                    self._selector.unregister(sock)
                sock.close()
            self._selector.close()

    def _step(self) -> None:
        while True:
            try:
                self._open.append(self._incoming.get_nowait())
            except queue.Empty:
                break
        now = time.time()
        due = now + 0.05
        for target in self._open:
            if now - target.started > self.deadline:
                target.lost = True
            elif target._next <= now and not target._waiting:
                self._probe(target, now)
                target._next = now + pause_at(now - target.started)
            due = min(due, target._next)
        self._expire(now)
        for key, _ in self._selector.select(max(0.0, due - time.time())):
            self._receive(key.fileobj)  # type: ignore[arg-type]
        if any(not t.open for t in self._open):
            if self.on_done is not None:
                for target in self._open:
                    if not target.open:
                        self.on_done(target)
            self._open = [t for t in self._open if t.open]
            with self._idle:
                self._idle.notify_all()

    def _probe(self, target: Target, now: float) -> None:
        """One probe on a socket of its own (a new source port each time)."""
        self.probes += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        read: Callable[[bytes], DnsReply | Code | None]
        try:
            if target.sim is None:
                assert target.source is not None
                sock.bind((target.source, 0))
                query_id = int.from_bytes(os.urandom(2), "big")
                sock.sendto(dns_query(target.name, query_id), (target.server, 53))
                read = partial(_dns_answer, query_id)
            else:
                sock.bind((self.nas_address, 0))
                request = access_request(target.sim, self.nas_address, self.secret, 0)
                sock.sendto(request.encode(), (target.server, RADIUS_AUTH))
                read = partial(_radius_answer, request, self.secret)
        except OSError:
            sock.close()
            return
        self._inflight[sock] = (target, read, now)
        self._selector.register(sock, selectors.EVENT_READ)
        target._waiting = True

    def _receive(self, sock: socket.socket) -> None:
        at = time.time()
        target, read, sent = self._inflight.pop(sock)
        target._waiting = False
        self._selector.unregister(sock)
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        finally:
            sock.close()
        reply = read(data) if data else None
        if reply is not None:
            self.round_trips.setdefault(target.host, []).append(at - sent)
            self._judge(target, reply, sent, at)

    def _judge(self, target: Target, reply: DnsReply | Code, sent: float, at: float) -> None:
        if not target.open:
            return
        target.replies += 1
        target.last = reply
        if not target.want(reply):
            # Only a probe that left after the run's first one breaks the run: an older
            # reply overtaken on the way says nothing about now.
            if target._run_from is not None and sent >= target._run_sent:
                target._run_from, target._run = None, 0
                target.broken += 1
            return
        if target._run_from is None:
            target._run_from, target._run_sent = at, sent
        target._run += 1
        if target._run >= (target.confirm or self.confirm):
            target.applied_at = target._run_from

    def _expire(self, now: float) -> None:
        for sock, (target, _, sent) in list(self._inflight.items()):
            if now - sent > PROBE_TIMEOUT:
                del self._inflight[sock]
                target._waiting = False
                self._selector.unregister(sock)
                sock.close()
                self.timeouts[target.host] = self.timeouts.get(target.host, 0) + 1


def _dns_answer(query_id: int, data: bytes) -> DnsReply | None:
    parsed = dns_reply(data)
    return parsed[1] if parsed is not None and parsed[0] == query_id else None


def _radius_answer(request: Packet, secret: SharedSecret, data: bytes) -> Code | None:
    try:
        reply = Packet.decode(data)
        if reply.identifier != request.identifier:
            return None
        verify_reply(reply, request, secret)
    except (RadiusDecodeError, RadiusAuthError):
        return None
    return Code(reply.code)
