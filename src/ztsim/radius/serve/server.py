"""The AAA server's UDP endpoints: thin users of `ztsim.datagram` around `AaaCore`.

Authentication and accounting are each served by a thread of their own (see
`ztsim.datagram`). Accounting could be read on the event loop instead, but it would
then need a second receive path and a second way to stop; on its own thread it also
never holds up the loop's tasks (reloads, revocation, the writer) while the core
works. Both take the core's lock once per batch of datagrams, so the core sees one
datagram at a time, as the event loop's own tasks do. Bad input never raises out of
here: the core drops and counts it, and an unexpected error is logged and the
datagram dropped.

An Accounting-Response waits for its records' commit (`AfterCommit`): the endpoint
sends nothing for it, calls `wake` once per batch that left such a reply (the writer
starts a commit at once), and the service sends it with `send_acct` after the commit,
from the writer's thread. Stopping is in two steps so that the last commit's replies
still go out from the accounting port: `stop_serving` ends both receiving threads,
`close` then closes the socket the replies leave by.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ztsim.clock import Clock
from ztsim.datagram import Answer, DatagramServer, Peer, bind_udp
from ztsim.radius.aaa.traffic import AfterCommit


class Core(Protocol):
    """What the endpoints need of `AaaCore`."""

    @property
    def clock(self) -> Clock: ...

    def handle_auth(self, datagram: bytes, peer: Peer, now: datetime) -> bytes | None: ...

    def handle_acct(self, datagram: bytes, peer: Peer) -> bytes | AfterCommit | None: ...


@dataclass
class RadiusServer:
    auth: DatagramServer
    acct: DatagramServer
    # The accounting socket, duplicated: replies sent after a commit leave by it, also
    # once `stop_serving` has closed the serving thread's own descriptor.
    acct_replies: socket.socket
    acct_send_failures: int = 0

    @property
    def auth_port(self) -> int:
        return self.auth.port

    @property
    def acct_port(self) -> int:
        return self.acct.port

    def send_acct(self, reply: bytes, peer: Peer) -> None:
        """Send an Accounting-Response that waited for its commit; from any thread."""
        try:
            self.acct_replies.sendto(reply, peer)
        except OSError:
            self.acct_send_failures += 1  # UDP promises nothing: the gateway retransmits

    def stop_serving(self) -> None:
        """No more requests; `send_acct` works until `close`."""
        self.auth.close()
        self.acct.close()

    def close(self) -> None:
        self.stop_serving()
        self.acct_replies.close()


def _auth_batches(
    core: Core, lock: AbstractContextManager[object]
) -> Callable[[], AbstractContextManager[Answer]]:
    handle = core.handle_auth

    @contextlib.contextmanager
    def batch() -> Iterator[Answer]:
        with lock:
            # Read once per batch: the datagrams of one system call share their time.
            now = core.clock()
            yield lambda data, peer: handle(data, peer, now)

    return batch


def _acct_batches(
    core: Core, lock: AbstractContextManager[object], wake: Callable[[], None]
) -> Callable[[], AbstractContextManager[Answer]]:
    handle = core.handle_acct

    @contextlib.contextmanager
    def batch() -> Iterator[Answer]:
        waiting = False

        def answer(datagram: bytes, peer: Peer) -> bytes | None:
            nonlocal waiting
            reply = handle(datagram, peer)
            if isinstance(reply, AfterCommit):
                waiting = True
                return None
            return reply

        with lock:
            yield answer
        if waiting:
            wake()

    return batch


async def start_server(
    core: Core,
    lock: AbstractContextManager[object],
    host: str,
    auth_port: int,
    acct_port: int,
    *,
    batched: bool = True,
    wake: Callable[[], None] = lambda: None,
) -> RadiusServer:
    """Bind the authentication and accounting endpoints (port 0 picks a free port) and
    serve them; `batched`: datagrams over recvmmsg/sendmmsg where the system has them;
    `wake`: called when accounting replies wait for a commit."""
    acct_socket = bind_udp(host, acct_port)
    try:
        auth_socket = bind_udp(host, auth_port)
    except OSError:
        acct_socket.close()
        raise
    try:
        replies = acct_socket.dup()
    except OSError:
        acct_socket.close()
        auth_socket.close()
        raise
    auth = DatagramServer(
        auth_socket, _auth_batches(core, lock), name="radius-auth", batched=batched
    )
    acct = DatagramServer(
        acct_socket, _acct_batches(core, lock, wake), name="radius-acct", batched=batched
    )
    auth.start()
    acct.start()
    return RadiusServer(auth, acct, replies)
