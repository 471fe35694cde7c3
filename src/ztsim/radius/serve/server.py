"""The AAA server's UDP endpoints: thin users of `ztsim.datagram` around `AaaCore`.

Authentication and accounting are each served by a thread of their own (see
`ztsim.datagram`). Accounting could be read on the event loop instead, but it would
then need a second receive path and a second way to stop; on its own thread it also
never holds up the loop's tasks (reloads, revocation, the writer) while the core
works. Both take the core's lock once per batch of datagrams, so the core sees one
datagram at a time, as the event loop's own tasks do. Bad input never raises out of
here: the core drops and counts it, and an unexpected error is logged and the
datagram dropped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ztsim.clock import Clock
from ztsim.datagram import Answer, DatagramServer, Peer, bind_udp


class Core(Protocol):
    """What the endpoints need of `AaaCore`."""

    @property
    def clock(self) -> Clock: ...

    def handle_auth(self, datagram: bytes, peer: Peer, now: datetime) -> bytes | None: ...

    def handle_acct(self, datagram: bytes, peer: Peer) -> bytes | None: ...


@dataclass
class RadiusServer:
    auth: DatagramServer
    acct: DatagramServer

    @property
    def auth_port(self) -> int:
        return self.auth.port

    @property
    def acct_port(self) -> int:
        return self.acct.port

    def close(self) -> None:
        self.auth.close()
        self.acct.close()


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
    core: Core, lock: AbstractContextManager[object]
) -> Callable[[], AbstractContextManager[Answer]]:
    handle = core.handle_acct

    @contextlib.contextmanager
    def batch() -> Iterator[Answer]:
        with lock:
            yield handle

    return batch


async def start_server(
    core: Core,
    lock: AbstractContextManager[object],
    host: str,
    auth_port: int,
    acct_port: int,
    *,
    batched: bool = True,
) -> RadiusServer:
    """Bind the authentication and accounting endpoints (port 0 picks a free port) and
    serve them; `batched`: datagrams over recvmmsg/sendmmsg where the system has them."""
    acct_socket = bind_udp(host, acct_port)
    try:
        auth_socket = bind_udp(host, auth_port)
    except OSError:
        acct_socket.close()
        raise
    auth = DatagramServer(
        auth_socket, _auth_batches(core, lock), name="radius-auth", batched=batched
    )
    acct = DatagramServer(
        acct_socket, _acct_batches(core, lock), name="radius-acct", batched=batched
    )
    auth.start()
    acct.start()
    return RadiusServer(auth, acct)
