"""The parent-to-worker relay of identity patches, over real socket pairs in one process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from ztsim.dns.policy.identity import Requester
from ztsim.dns.serve.identities import FullTable, TablePatch
from ztsim.dns.serve.relay import RETRY_SECONDS, Message, RelayHub, RelayReceiver
from ztsim.dns.store.identity_view import Entry, TokenEntry
from ztsim.metrics.registry import Kind, Spec

WHO = Requester(org_id="o1", identity_id="alice", group_ids=frozenset({"g1"}))
PATCH = TablePatch(
    addresses=(("10.0.0.1", Entry("10.0.0.1", "8900000000000000001", WHO)), ("10.0.0.2", None)),
    tokens=(TokenEntry("t1", b"\x01" * 32, WHO),),
    gone_tokens=("t2",),
)


class Worker:
    """A receiver and what it was handed."""

    def __init__(self, sock: socket.socket, clock: list[float]) -> None:
        self.got: list[Message] = []
        self.arrived = threading.Condition()
        self.receiver = RelayReceiver(sock, self._deliver, clock=lambda: clock[0])

    def _deliver(self, message: Message) -> None:
        with self.arrived:
            self.got.append(message)
            self.arrived.notify_all()

    def wait_for(self, count: int) -> list[Message]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.got) >= count, 5.0)
            return list(self.got)

    def wait_for_last(self, message: Message) -> None:
        """Until `message` has arrived, and nothing after it."""
        with self.arrived:
            assert self.arrived.wait_for(lambda: self.got[-1:] == [message], 5.0), self.got


class Reads:
    """The parent's `read_now`: each call is one future the test settles."""

    def __init__(self) -> None:
        self.asked: list[Future[bool]] = []
        self.changed = threading.Condition()

    def __call__(self) -> Future[bool]:
        future: Future[bool] = Future()
        with self.changed:
            self.asked.append(future)
            self.changed.notify_all()
        return future

    def wait_for(self, count: int) -> list[Future[bool]]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.asked) >= count, 5.0)
            return list(self.asked)


@pytest.fixture
def clock() -> list[float]:
    return [100.0]


@pytest.fixture
def pair(clock: list[float]) -> Iterator[tuple[RelayHub, list[Worker], Reads]]:
    parents, workers = [], []
    for _ in range(2):
        parent_end, child_end = socket.socketpair()
        parents.append(parent_end)
        workers.append(Worker(child_end, clock))
    hub, reads = RelayHub(parents), Reads()
    for worker in workers:
        worker.receiver.start()
    hub.serve_requests(reads)
    yield hub, workers, reads
    hub.stop()
    for worker in workers:
        worker.receiver.stop()


def test_every_worker_gets_every_patch_in_order(
    pair: tuple[RelayHub, list[Worker], Reads],
) -> None:
    hub, workers, _ = pair
    full = FullTable(entries=(Entry("10.0.0.3", None, WHO),), tokens=())
    hub.send(("patch", 7, 0, PATCH))
    hub.send(("full", 9, 9, full))
    hub.send(("patch", 10, 10, TablePatch()))
    for worker in workers:
        assert worker.wait_for(3) == [
            ("patch", 7, 0, PATCH),
            ("full", 9, 9, full),
            ("patch", 10, 10, TablePatch()),
        ]


def test_a_large_table_crosses_whole(pair: tuple[RelayHub, list[Worker], Reads]) -> None:
    """Far more than a socket buffer: the frame is reassembled, never cut."""
    hub, workers, _ = pair
    entries = tuple(
        Entry(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", None, WHO) for i in range(50_000)
    )
    sender = threading.Thread(target=hub.send, args=(("full", 1, 1, FullTable(entries, ())),))
    sender.start()
    for worker in workers:
        [(kind, _, _, body)] = worker.wait_for(1)
        assert kind == "full"
        assert isinstance(body, FullTable)
        assert body.entries == entries
    sender.join(5.0)


def test_a_read_request_is_answered_after_the_patches_of_that_read(
    pair: tuple[RelayHub, list[Worker], Reads],
) -> None:
    hub, workers, reads = pair
    worker = workers[0]
    asked = worker.receiver.read_now()
    [read] = reads.wait_for(1)
    assert not asked.done()
    hub.send(("patch", 3, 0, PATCH))  # what that read applied, relayed before it settles
    read.set_result(True)
    assert asked.result(timeout=5.0) is True
    assert worker.got == [("patch", 3, 0, PATCH)]  # installed before the answer came


def test_requests_made_during_a_read_share_the_next_one(
    pair: tuple[RelayHub, list[Worker], Reads],
) -> None:
    _hub, workers, reads = pair
    receiver = workers[0].receiver
    first = receiver.read_now()
    [read] = reads.wait_for(1)
    # Asked while the first read may have started: a read of their own, one for all.
    second, third = receiver.read_now(), receiver.read_now()
    assert second is third
    assert second is not first
    time.sleep(0.05)
    assert len(reads.asked) == 1  # not sent until the first is answered
    read.set_result(True)
    assert first.result(timeout=5.0) is True
    _, next_read = reads.wait_for(2)
    assert not second.done()
    next_read.set_result(False)
    assert second.result(timeout=5.0) is False


def test_after_a_failed_read_a_worker_does_not_wait_for_a_while(
    pair: tuple[RelayHub, list[Worker], Reads], clock: list[float]
) -> None:
    _hub, workers, reads = pair
    receiver = workers[0].receiver
    assert receiver.readable()
    asked = receiver.read_now()
    reads.wait_for(1)[0].set_result(False)  # the database is down
    assert asked.result(timeout=5.0) is False
    assert not receiver.readable()
    clock[0] += RETRY_SECONDS
    assert receiver.readable()


def test_a_worker_that_ended_is_dropped(pair: tuple[RelayHub, list[Worker], Reads]) -> None:
    hub, workers, _ = pair
    workers[1].receiver.stop()
    deadline = time.monotonic() + 5.0
    while hub.workers == 2 and time.monotonic() < deadline:
        hub.send(("patch", 1, 0, TablePatch()))
        time.sleep(0.01)
    assert hub.workers == 1
    hub.send(("patch", 2, 0, PATCH))  # no error; the other worker still gets it
    workers[0].wait_for_last(("patch", 2, 0, PATCH))


def test_a_worker_whose_parent_ended_keeps_its_table_and_says_so(clock: list[float]) -> None:
    parent_end, child_end = socket.socketpair()
    worker = Worker(child_end, clock)
    worker.receiver.start()
    asked = worker.receiver.read_now()
    assert worker.receiver.connected
    assert worker.receiver.lag_seconds() == 0.0
    parent_end.close()
    assert asked.result(timeout=5.0) is False  # nobody will answer it
    assert not worker.receiver.connected
    assert not worker.receiver.readable()
    clock[0] += 12.0
    assert worker.receiver.lag_seconds() == 12.0
    assert worker.receiver.read_now().result(timeout=1.0) is False
    worker.receiver.stop()


def test_a_workers_metrics_reach_its_parent_as_data(
    pair: tuple[RelayHub, list[Worker], Reads],
) -> None:
    hub, workers, reads = pair
    spec = Spec("ztsim_test_queries_total", "Queries.", Kind.COUNTER, ("transport",))
    families = [spec.family([(("udp",), 5)])]
    workers[1].receiver.send_metrics(families)
    workers[1].receiver.read_now()  # a request behind it on the same stream
    reads.wait_for(1)
    assert hub.worker_metrics() == {"worker-1": tuple(families)}


def test_a_worker_that_sends_nonsense_is_let_go(
    pair: tuple[RelayHub, list[Worker], Reads],
) -> None:
    hub, workers, _ = pair
    workers[0].receiver.send_metrics([])
    workers[0].receiver.sock.sendall(b"\xff\xff\xff\xff" + b"x" * 16)  # a 4 GiB frame
    deadline = time.monotonic() + 5.0
    while hub.workers == 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hub.workers == 1
    assert "worker-0" not in hub.worker_metrics()


def test_a_receiver_whose_updates_stop_says_so_once_and_a_stopped_one_does_not() -> None:
    lost: list[str] = []
    parent_end, child_end = socket.socketpair()
    orphan = RelayReceiver(child_end, on_lost=lambda: lost.append("parent gone"))
    orphan.start()
    parent_end.close()
    deadline = time.monotonic() + 5.0
    while not lost and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lost == ["parent gone"]
    orphan.stop()

    def broken(_message: Message) -> None:
        raise RuntimeError("a bug in installing a patch")

    parent_end, child_end = socket.socketpair()
    failing = RelayReceiver(child_end, broken, on_lost=lambda: lost.append("cannot install"))
    failing.start()
    parent_end.sendall(_frame_of(("patch", 1, 0, PATCH)))
    deadline = time.monotonic() + 5.0
    while len(lost) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lost == ["parent gone", "cannot install"]
    assert parent_end.recv(1) == b""  # the parent sees the end, and drops the worker
    failing.stop()
    parent_end.close()

    parent_end, child_end = socket.socketpair()
    stopped = RelayReceiver(child_end, on_lost=lambda: lost.append("stopped"))
    stopped.start()
    stopped.stop()  # an orderly stop is not a loss
    parent_end.close()
    assert lost == ["parent gone", "cannot install"]


def _frame_of(message: Message) -> bytes:
    hub_end, worker_end = socket.socketpair()
    hub = RelayHub([hub_end])
    hub.send(message)
    worker_end.settimeout(5.0)
    data = worker_end.recv(1 << 20)
    hub.stop()
    worker_end.close()
    return data
