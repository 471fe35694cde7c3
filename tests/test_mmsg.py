"""recvmmsg/sendmmsg batches over real loopback sockets."""

from __future__ import annotations

import socket
import threading

import pytest

from ztsim.mmsg import SLOT, DatagramBatch, batch_calls

CALLS = batch_calls()
pytestmark = pytest.mark.skipif(CALLS is None, reason="recvmmsg/sendmmsg are Linux calls")


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
    family: int, server_host: str, client_hosts: list[str]
) -> None:
    assert CALLS is not None
    with _server(family, server_host) as server:
        batch = DatagramBatch(server, CALLS, slots=8)
        clients = [_client(family, host) for host in client_hosts]
        try:
            for n, client in enumerate(clients):
                client.sendto(b"query-%d" % n, server.getsockname()[:2])
            assert batch.receive() == len(clients)  # all waiting datagrams, one call
            for slot, client in enumerate(clients):
                assert batch.datagram(slot) == b"query-%d" % slot
                assert batch.source(slot) == client.getsockname()[:2]
                assert batch.reply(slot, b"answer-%d" % slot)
            assert batch.flush() == 0
            for n, client in enumerate(clients):
                assert client.recvfrom(100)[0] == b"answer-%d" % n
        finally:
            for client in clients:
                client.close()


def test_limits_oversize_and_full() -> None:
    assert CALLS is not None
    with (
        _server(socket.AF_INET, "127.0.0.1") as server,
        _client(socket.AF_INET, "127.0.0.1") as client,
    ):
        batch = DatagramBatch(server, CALLS, slots=2)
        client.sendto(b"x" * (SLOT + 1), server.getsockname())
        client.sendto(b"small", server.getsockname())
        assert batch.receive() == 2
        assert batch.datagram(0) is None  # cut short by the kernel: dropped
        assert batch.datagram(1) == b"small"
        assert not batch.reply(1, b"y" * (SLOT + 1))  # the caller sends it alone
        assert batch.reply(1, b"a")
        assert batch.reply(1, b"b")
        assert not batch.reply(1, b"c")  # two slots, both queued
        assert batch.flush() == 0
        assert [client.recvfrom(10)[0] for _ in range(2)] == [b"a", b"b"]
        assert batch.flush() == 0  # nothing queued any more


def test_shutdown_wakes_a_blocked_receive() -> None:
    assert CALLS is not None
    with _server(socket.AF_INET, "127.0.0.1") as server:
        batch = DatagramBatch(server, CALLS, slots=4)
        seen: list[bytes | None] = []

        def receive() -> None:
            count = batch.receive()
            seen.extend(batch.datagram(slot) for slot in range(count))

        thread = threading.Thread(target=receive)
        thread.start()
        thread.join(0.2)
        assert thread.is_alive()
        with pytest.raises(OSError, match="not connected"):
            server.shutdown(socket.SHUT_RD)  # ENOTCONN, but the sleeper is woken
        thread.join(2)
        assert not thread.is_alive()
        assert seen == [None]
