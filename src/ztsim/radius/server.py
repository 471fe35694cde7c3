"""The AAA server's UDP endpoints: a thin asyncio adapter around `AaaCore`.

Authentication and accounting each get one socket, read with `loop.add_reader`;
every datagram is handed to the core and its reply (if any) sent back at once. Bad
input never raises out of here: the core drops and counts it, and an unexpected
error is logged and the datagram dropped.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from ztsim.radius.core import AaaCore

log = logging.getLogger("ztsim.radius.server")


# Datagrams handled per wake-up of the event loop: draining a burst in one go saves a
# poll per datagram, and the cap keeps other tasks (the writer, the API) running.
_DRAIN = 64


class _Endpoint:
    """One UDP socket read with `loop.add_reader`: each readiness drains up to _DRAIN
    datagrams, answering each at once (asyncio's datagram transport reads one per poll)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        handle: Callable[[bytes, tuple[str, int]], bytes | None],
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.handle = handle
        self.send_failures = 0
        loop.add_reader(sock.fileno(), self._ready)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _ready(self) -> None:
        for _ in range(_DRAIN):
            try:
                data, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("UDP receive error: %s", exc)
                return
            try:
                reply = self.handle(data, (str(addr[0]), int(addr[1])))
            except Exception:
                # A bug must not stop the server: the request is dropped and logged.
                log.exception("unexpected error while handling a RADIUS datagram")
                continue
            if reply is not None:
                try:
                    self.sock.sendto(reply, addr)
                except OSError:
                    # UDP: the client retransmits; a full send buffer drops this reply.
                    self.send_failures += 1

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


@dataclass
class RadiusServer:
    auth: _Endpoint
    acct: _Endpoint

    @property
    def auth_port(self) -> int:
        return self.auth.port

    @property
    def acct_port(self) -> int:
        return self.acct.port

    def close(self) -> None:
        self.auth.close()
        self.acct.close()


# Bursts from a gateway (hundreds of requests in flight) must queue in the kernel, not
# be dropped: ask for 4 MiB (Linux caps it at net.core.rmem_max/wmem_max).
SOCKET_BUFFER = 4 * 1024 * 1024


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def start_server(core: AaaCore, host: str, auth_port: int, acct_port: int) -> RadiusServer:
    """Bind the authentication and accounting endpoints (port 0 picks a free port)."""
    loop = asyncio.get_running_loop()
    auth = _Endpoint(loop, _bound_socket(host, auth_port), core.handle_auth)
    try:
        acct = _Endpoint(loop, _bound_socket(host, acct_port), core.handle_acct)
    except OSError:
        auth.close()
        raise
    return RadiusServer(auth, acct)
