"""recvmmsg/sendmmsg batches over real loopback sockets: the ctypes rings (`DatagramBatch`,
the reference) and the C ones (`_mmsg.Batch`) held to the same behaviour."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ztsim import mmsg
from ztsim.mmsg import SLOT, Batch, DatagramBatch, batch_calls, batch_for

CALLS = batch_calls()
pytestmark = pytest.mark.skipif(CALLS is None, reason="recvmmsg/sendmmsg are Linux calls")
IMPLEMENTATIONS = ["ctypes"] if mmsg._C is None else ["ctypes", "c"]
Make = Callable[[socket.socket, int], Batch]


@pytest.fixture(params=IMPLEMENTATIONS)
def make_batch(request: pytest.FixtureRequest) -> Make:
    def make(sock: socket.socket, slots: int) -> Batch:
        assert CALLS is not None
        if request.param == "ctypes":
            return DatagramBatch(sock, CALLS, slots)
        assert mmsg._C is not None
        batch: Batch = mmsg._C.Batch(sock.fileno(), sock.family == socket.AF_INET6, slots, SLOT)
        return batch

    return make


def test_the_c_rings_are_built_unless_asked_not_to() -> None:
    """The suite runs the C rings wherever the install built them (make test rebuilds)."""
    assert (mmsg._C is None) == bool(os.environ.get("ZTSIM_PURE_PYTHON"))
    with _server(socket.AF_INET, "127.0.0.1") as server:
        batch = batch_for(server, 4)
        expected = DatagramBatch if mmsg._C is None else mmsg._C.Batch
        assert isinstance(batch, expected)
        assert batch.slots == 4
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as stream,
        pytest.raises(ValueError, match="datagram"),
    ):
        batch_for(stream, 4)


@pytest.mark.skipif(mmsg._C is None, reason="pure Python run (ZTSIM_PURE_PYTHON)")
def test_c_rings_refuse_what_the_reference_would_misuse() -> None:
    assert mmsg._C is not None
    with _server(socket.AF_INET, "127.0.0.1") as server:
        batch = mmsg._C.Batch(server.fileno(), False, 2, SLOT)
        with pytest.raises(ValueError, match="slot"):
            batch.reply(2, b"x")  # there are slots 0 and 1
        with pytest.raises(ValueError, match="count"):
            batch.received(3)
        for bad in ((-1, False, 2, SLOT), (server.fileno(), False, 0, SLOT)):
            with pytest.raises(ValueError, match="slots"):
                mmsg._C.Batch(*bad)
        assert batch.flush() == 0  # nothing queued


def _server(family: int, host: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    return sock


def _client(family: int, host: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(2)
    return sock


@pytest.mark.parametrize(
    ("family", "server_host", "client_hosts"),
    [
        (socket.AF_INET, "127.0.0.1", ["127.0.0.2", "127.0.0.3", "127.0.0.4"]),
        (socket.AF_INET6, "::1", ["::1", "::1"]),
    ],
)
def test_many_datagrams_per_call_each_answered(
    family: int, server_host: str, client_hosts: list[str], make_batch: Make
) -> None:
    with _server(family, server_host) as server:
        batch = make_batch(server, 8)
        clients = [_client(family, host) for host in client_hosts]
        try:
            for n, client in enumerate(clients):
                client.sendto(b"query-%d" % n, server.getsockname()[:2])
            count = batch.receive()
            assert count == len(clients)  # all waiting datagrams, one call
            received = batch.received(count)
            assert [slot for slot, _, _ in received] == list(range(count))
            for (slot, data, source), client in zip(received, clients, strict=True):
                assert data == b"query-%d" % slot
                assert source == client.getsockname()[:2]
                assert batch.reply(slot, b"answer-%d" % slot)
            assert batch.flush() == 0
            for n, client in enumerate(clients):
                assert client.recvfrom(100)[0] == b"answer-%d" % n
        finally:
            for client in clients:
                client.close()


def test_limits_oversize_and_full(make_batch: Make) -> None:
    with (
        _server(socket.AF_INET, "127.0.0.1") as server,
        _client(socket.AF_INET, "127.0.0.1") as client,
    ):
        batch = make_batch(server, 2)
        client.sendto(b"x" * (SLOT + 1), server.getsockname())
        client.sendto(b"small", server.getsockname())
        assert batch.receive() == 2
        received = batch.received(2)  # the first, cut short by the kernel, is dropped
        assert [(slot, data) for slot, data, _ in received] == [(1, b"small")]
        assert not batch.reply(1, b"y" * (SLOT + 1))  # the caller sends it alone
        assert batch.reply(1, b"a")
        assert batch.reply(1, b"b")
        assert not batch.reply(1, b"c")  # two slots, both queued
        assert batch.flush() == 0
        assert [client.recvfrom(10)[0] for _ in range(2)] == [b"a", b"b"]
        assert batch.flush() == 0  # nothing queued any more


def test_shutdown_wakes_a_blocked_receive(make_batch: Make) -> None:
    with _server(socket.AF_INET, "127.0.0.1") as server:
        batch = make_batch(server, 4)
        seen: list[int | bytes] = []

        def receive() -> None:
            count = batch.receive()
            seen.append(count)
            seen.extend(data for _, data, _ in batch.received(count))

        thread = threading.Thread(target=receive)
        thread.start()
        thread.join(0.2)
        assert thread.is_alive()
        with pytest.raises(OSError, match="not connected"):
            server.shutdown(socket.SHUT_RD)  # ENOTCONN, but the sleeper is woken
        thread.join(2)
        assert not thread.is_alive()
        assert seen == [1]  # one empty wake-up, which `received` leaves out


def test_a_reply_sent_out_of_turn_does_not_misroute_the_next_batch(make_batch: Make) -> None:
    """Reply slots follow datagram slots unless a datagram goes unanswered; then that
    reply is pointed at its own source, and put back after sending."""
    with _server(socket.AF_INET, "127.0.0.1") as server:
        batch = make_batch(server, 4)
        one, two = _client(socket.AF_INET, "127.0.0.2"), _client(socket.AF_INET, "127.0.0.3")
        try:
            one.sendto(b"a", server.getsockname())
            two.sendto(b"b", server.getsockname())
            assert batch.receive() == 2
            assert batch.reply(1, b"to-two")  # the first datagram goes unanswered
            assert batch.flush() == 0
            assert two.recvfrom(10)[0] == b"to-two"
            one.sendto(b"c", server.getsockname())
            assert batch.receive() == 1
            assert batch.reply(0, b"to-one")
            assert batch.flush() == 0
            assert one.recvfrom(10)[0] == b"to-one"
        finally:
            one.close()
            two.close()


def test_replies_sent_part_way_through_a_batch_reach_their_sources(make_batch: Make) -> None:
    """A server may flush some replies before it has answered the whole batch; the rest
    then take the first reply slots again, pointed at their own sources."""
    with _server(socket.AF_INET, "127.0.0.1") as server:
        batch = make_batch(server, 4)
        hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
        clients = [_client(socket.AF_INET, host) for host in hosts]
        try:
            for rounds in range(2):  # the second batch checks that pointers were put back
                for n, client in enumerate(clients):
                    client.sendto(b"q%d" % n, server.getsockname())
                assert batch.receive() == len(clients)
                received = batch.received(len(clients))
                for slot, _, _ in received[:2]:
                    assert batch.reply(slot, b"early-%d-%d" % (rounds, slot))
                assert batch.queued == 2
                assert batch.flush() == 0
                assert batch.queued == 0
                for slot, _, _ in received[2:]:
                    assert batch.reply(slot, b"late-%d-%d" % (rounds, slot))
                assert batch.flush() == 0
                for n, client in enumerate(clients):
                    when = "early" if n < 2 else "late"
                    assert client.recvfrom(20)[0] == b"%s-%d-%d" % (when.encode(), rounds, n)
        finally:
            for client in clients:
                client.close()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2),
            st.one_of(st.integers(0, 64), st.sampled_from([SLOT - 1, SLOT, SLOT + 1, SLOT + 8])),
            st.integers(0, 255),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_each_implementation_hands_out_exactly_what_was_sent(
    sends: list[tuple[int, int, int]],
) -> None:
    """Whatever mix of sources and sizes arrives (empty, a whole slot, one octet too many),
    both rings hand out each whole datagram with its source, in order, and leave out
    those cut short; a reply to each reaches its own source."""
    assert CALLS is not None
    hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    with _server(socket.AF_INET, "127.0.0.1") as server:
        clients = [_client(socket.AF_INET, host) for host in hosts]
        try:
            for name in IMPLEMENTATIONS:
                batch = (
                    DatagramBatch(server, CALLS, 8) if name == "ctypes" else batch_for(server, 8)
                )
                assert batch is not None
                for who, size, octet in sends:
                    clients[who].sendto(bytes([octet]) * size, server.getsockname())
                count = 0
                while count < len(sends):
                    count += _received_into(batch, sends, count, clients)
        finally:
            for client in clients:
                client.close()


def _received_into(
    batch: Batch,
    sends: list[tuple[int, int, int]],
    offset: int,
    clients: list[socket.socket],
) -> int:
    """One receive: checks what it handed out against `sends[offset:]`; how many it took."""
    taken = batch.receive()
    got = batch.received(taken)
    expected = [
        (slot, bytes([octet]) * size, clients[who].getsockname())
        for slot, (who, size, octet) in enumerate(sends[offset : offset + taken])
        if size <= SLOT
    ]
    assert got == expected
    for slot, data, _ in got:
        assert batch.reply(slot, data[:16] + b"!")
    assert batch.flush() == 0
    for _, data, source in got:
        client = next(c for c in clients if c.getsockname() == source)
        assert client.recvfrom(SLOT)[0] == data[:16] + b"!"
    return taken
