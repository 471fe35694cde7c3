"""The datagram runtime over real sockets: answers batched or one by one, replies sent
part-way through a batch, errors contained, failed sends counted, and one close that
stops the serving thread on every kind of bind."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from ztsim.datagram import REPLY_CHUNK, Answer, DatagramServer, Peer, bind_udp
from ztsim.mmsg import batch_calls

BATCHED = [True, False] if batch_calls() is not None else [False]


def _echo(data: bytes, _peer: Peer) -> bytes | None:
    if data == b"boom":
        raise RuntimeError("a bug in the handler")
    if data == b"huge":
        return b"x" * 70000  # more than a UDP datagram can carry: the send fails
    return b"re:" + data


@contextlib.contextmanager
def _plain(answer: Answer) -> Iterator[Answer]:
    yield answer


def _server(
    host: str, answer: Answer, *, batched: bool, reuse_port: bool = False
) -> DatagramServer:
    return DatagramServer(
        bind_udp(host, 0, reuse_port=reuse_port),
        lambda: _plain(answer),
        name="test-udp",
        batched=batched,
    )


def _client(family: int = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(2)
    return sock


@pytest.mark.parametrize("batched", BATCHED)
def test_answers_contains_errors_and_counts_failed_sends(
    batched: bool, caplog: pytest.LogCaptureFixture
) -> None:
    server = _server("127.0.0.1", _echo, batched=batched)
    server.start()
    try:
        assert server.batched == (batched and batch_calls() is not None)
        with _client() as client:
            for data in (b"one", b"boom", b"huge", b"two"):
                client.sendto(data, ("127.0.0.1", server.port))
            # The failing handler and the failed send cost only their own datagrams.
            assert [client.recv(100) for _ in range(2)] == [b"re:one", b"re:two"]
        assert server.send_failures == 1
        assert "test-udp: unexpected error while handling a datagram" in caplog.text
    finally:
        server.close()


@pytest.mark.skipif(batch_calls() is None, reason="batches need recvmmsg/sendmmsg")
def test_replies_leave_every_chunk_of_a_batch() -> None:
    """The first replies of a full batch are on their way before the rest are decided."""
    total = REPLY_CHUNK + 4
    arrived: list[bytes] = []
    arrived_before: dict[int, int] = {}  # datagram -> replies at the client when it came up
    with _client() as client:
        client.setblocking(False)  # read by the handler too, which must not wait

        def answer(data: bytes, _peer: Peer) -> bytes:
            with contextlib.suppress(BlockingIOError):
                while True:
                    arrived.append(client.recv(100))
            arrived_before[int(data)] = len(arrived)
            return data

        server = _server("127.0.0.1", answer, batched=True)
        try:
            for n in range(total):  # queued before the thread starts: one batch
                client.sendto(b"%d" % n, ("127.0.0.1", server.port))
            server.start()
            deadline = time.monotonic() + 2
            while len(arrived_before) < total and time.monotonic() < deadline:
                time.sleep(0.01)
            client.settimeout(2)
            while len(arrived) < total:
                arrived.append(client.recv(100))
        finally:
            server.close()
    assert sorted(int(reply) for reply in arrived) == list(range(total))
    assert arrived_before[REPLY_CHUNK - 1] == 0
    assert arrived_before[REPLY_CHUNK] == REPLY_CHUNK


@pytest.mark.parametrize("batched", BATCHED)
@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "0.0.0.0", "::"])  # noqa: S104
def test_close_stops_the_thread_at_once_on_any_bind(host: str, batched: bool) -> None:
    server = _server(host, _echo, batched=batched)
    server.start()
    time.sleep(0.05)  # blocked in the kernel by now
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 1  # woken, not given up on after the join timeout
    assert server._thread is not None
    assert not server._thread.is_alive()
    assert server.sock.fileno() == -1


@pytest.mark.parametrize("batched", BATCHED)
def test_closing_one_of_two_sharing_a_port_leaves_the_other_serving(batched: bool) -> None:
    """With SO_REUSEPORT a wake-up datagram could reach the other socket; the shutdown
    touches only the one being closed."""
    first = _server("127.0.0.1", _echo, batched=batched, reuse_port=True)
    second = DatagramServer(
        bind_udp("127.0.0.1", first.port, reuse_port=True),
        lambda: _plain(_echo),
        name="test-udp-2",
        batched=batched,
    )
    first.start()
    second.start()
    try:
        time.sleep(0.05)
        started = time.monotonic()
        first.close()
        assert time.monotonic() - started < 1
        with _client() as client:
            client.sendto(b"still", ("127.0.0.1", second.port))
            assert client.recv(100) == b"re:still"
    finally:
        second.close()


def test_close_before_start_closes_the_socket() -> None:
    server = _server("127.0.0.1", _echo, batched=False)
    server.close()
    assert server.sock.fileno() == -1


def test_a_failed_bind_raises() -> None:
    with bind_udp("127.0.0.1", 0) as taken, pytest.raises(OSError, match="in use"):
        # Warnings are errors: had the new socket been left open, this would fail too.
        bind_udp("127.0.0.1", taken.getsockname()[1])
