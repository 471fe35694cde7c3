"""What a role listens on: one line each when it has started, and one line when it could
not bind, naming the role, the address and the protocol.

A bind that fails (EADDRINUSE) does not say which socket it was, and a role binds several:
the failure is told by binding each of the role's addresses again, briefly, once its own
sockets are closed (a failed start closes them). The first one that still fails is named.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from ztsim.errors import Conflict, InvalidInput, ZtsimError

log = logging.getLogger("ztsim.node")

_WHY = {
    errno.EADDRINUSE: "is already in use",
    errno.EACCES: "needs privileges (below 1024: root or CAP_NET_BIND_SERVICE)",
    errno.EADDRNOTAVAIL: "is not an address of this host",
}


@dataclass(frozen=True)
class Listener:
    what: str  # "RADIUS auth", "DNS", "DoT", "API", "RADIUS metrics"...
    host: str
    port: int
    proto: str = "udp"
    url: str = ""  # for HTTP: where to point a client

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}/{self.proto}"

    def line(self) -> str:
        return f"{self.what}: {self.address}" + (f" {self.url}" if self.url else "")


def http(what: str, host: str, port: int, path: str = "/") -> Listener:
    shown = f"[{host}]" if ":" in host else host
    return Listener(what, host, port, "tcp", f"http://{shown}:{port}{path}")


Announce = Callable[[Sequence[Listener]], None]


def log_listeners(listeners: Sequence[Listener]) -> None:
    """The default announcement (the CLI prints them instead)."""
    for listener in listeners:
        log.info("listening: %s", listener.line())


@contextmanager
def binding(candidates: Sequence[Listener], *, reuse_port: bool = False) -> Iterator[None]:
    """An address error inside becomes one line naming the listener that failed."""
    try:
        yield
    except OSError as exc:
        failure = bind_failure(candidates, exc, reuse_port=reuse_port)
        if failure is None:
            raise
        raise failure from None


def bind_failure(
    candidates: Sequence[Listener], exc: OSError, *, reuse_port: bool = False
) -> ZtsimError | None:
    """`exc` told as one line, or None when it is not about an address of `candidates`."""
    if exc.errno not in _WHY:
        return None
    for listener in candidates:
        code = probe(listener, reuse_port=reuse_port)
        if code in _WHY:
            return _error(listener, code)
    if exc.errno != errno.EADDRINUSE:
        return None  # EACCES and EADDRNOTAVAIL have other causes than a bind
    addresses = ", ".join(c.address for c in candidates)
    return Conflict(f"could not listen on {addresses}: an address is already in use")


def check_free(candidates: Sequence[Listener], *, reuse_port: bool = False) -> None:
    """Before forking workers (whose own failures the parent does not see)."""
    for listener in candidates:
        code = probe(listener, reuse_port=reuse_port)
        if code in _WHY:
            raise _error(listener, code)


def _error(listener: Listener, code: int) -> ZtsimError:
    text = f"{listener.what} port {listener.address} {_WHY[code]}"
    return Conflict(text) if code == errno.EADDRINUSE else InvalidInput(text)


def probe(listener: Listener, *, reuse_port: bool = False) -> int | None:
    """Bind `listener`'s address as its role does, and let it go: the errno, or None."""
    if listener.port == 0:
        return None
    kind = socket.SOCK_DGRAM if listener.proto == "udp" else socket.SOCK_STREAM
    try:
        infos = socket.getaddrinfo(listener.host, listener.port, type=kind)
    except socket.gaierror:
        return errno.EADDRNOTAVAIL
    family, _, _, _, address = infos[0]
    with socket.socket(family, kind) as sock:
        if kind == socket.SOCK_STREAM:
            # As the role's own TCP sockets: a connection in TIME_WAIT does not hold it.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return exc.errno
    return None


def bind_tcp(listener: Listener, backlog: int) -> socket.socket:
    """A listening TCP socket for a server that takes one (the API's uvicorn): bound here,
    so a failure is ours to tell, not a server's exit."""
    infos = socket.getaddrinfo(listener.host, listener.port, type=socket.SOCK_STREAM)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with binding([listener]):
            sock.bind(address)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock
