"""`AcctReplies`: a commit's Accounting-Responses to their own peers, in sendmmsg(2) calls
of `REPLY_SLOTS` (or one sendto(2) each), every one to the right peer."""

from __future__ import annotations

import socket

import pytest

from ztsim.mmsg import SLOT, batch_calls
from ztsim.radius.serve.server import REPLY_SLOTS, AcctReplies

BATCHED = [False, True] if batch_calls() is not None else [False]


def _bound(family: socket.AddressFamily, host: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(2.0)
    return sock


@pytest.fixture(params=[(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def family(request: pytest.FixtureRequest) -> tuple[socket.AddressFamily, str]:
    fam, host = request.param
    try:
        _bound(fam, host).close()
    except OSError:
        pytest.skip(f"no {host} here")
    return fam, host


def _drain(sock: socket.socket, count: int) -> list[bytes]:
    got = []
    for _ in range(count):  # bounded: each receive waits 2 s at most
        got.append(sock.recv(65536))
    return got


@pytest.mark.parametrize("batched", BATCHED)
def test_each_reply_reaches_its_own_peer_across_several_calls(
    family: tuple[socket.AddressFamily, str], batched: bool
) -> None:
    fam, host = family
    sender = _bound(fam, host)
    peers = [_bound(fam, host) for _ in range(3)]
    for peer in peers:
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    try:
        count = 2 * REPLY_SLOTS + 7  # three calls, the last one short
        replies = [
            (b"reply-%d" % n, (host, int(peers[n % 3].getsockname()[1]))) for n in range(count)
        ]
        replies.append((b"x" * (SLOT + 10), (host, int(peers[0].getsockname()[1]))))
        assert AcctReplies(sender, batched=batched).send(replies) == 0
        for k, peer in enumerate(peers):
            want = [r for n, (r, _) in enumerate(replies) if n % 3 == k and n < count]
            if k == 0:
                want.append(replies[-1][0])  # too big for a slot: sent on its own
            assert sorted(_drain(peer, len(want))) == sorted(want)
            peer.setblocking(False)
            with pytest.raises(BlockingIOError):
                peer.recv(65536)  # nothing more, nothing twice
    finally:
        sender.close()
        for peer in peers:
            peer.close()


@pytest.mark.parametrize("batched", BATCHED)
def test_a_reply_that_cannot_go_is_counted_and_the_rest_still_go(batched: bool) -> None:
    sender = _bound(socket.AF_INET, "127.0.0.1")
    peer = _bound(socket.AF_INET, "127.0.0.1")
    try:
        port = int(peer.getsockname()[1])
        replies = [
            (b"first", ("127.0.0.1", port)),
            (b"lost", ("no-such-address", port)),
            (b"last", ("127.0.0.1", port)),
        ]
        assert AcctReplies(sender, batched=batched).send(replies) == 1
        assert _drain(peer, 2) == [b"first", b"last"]
    finally:
        sender.close()
        peer.close()
