"""Outbound HTTP(S) requests that reach only addresses `netguard` allows: the one client
for URL lists (GET) and for notification sinks (POST).

Each hop resolves its host once, checks every address the name has, and connects to
the checked address (pinned: no second lookup for DNS rebinding to change); TLS still
verifies the certificate against the host name. A GET follows redirects up to a limit,
each hop checked the same way; a POST follows none (its answer, a 3xx included, is
returned as it came), so a sink cannot bounce a notification elsewhere. Failures below
HTTP (resolution, refused, timeout, TLS) are one message, so answers do not map which
internal ports are open.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

from ztsim.errors import ZtsimError
from ztsim.netguard import Network, Target, check_addresses, parse_target

Resolver = Callable[[str, int], list[str]]  # host and port -> its addresses
_REDIRECTS = frozenset({301, 302, 303, 307, 308})  # RFC 9110 §15.4


class FetchFailed(ZtsimError):
    """The request did not get an HTTP answer; the reason stays here, not in the text."""

    def __init__(self, message: str = "could not fetch the URL") -> None:
        super().__init__(message)


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise FetchFailed() from None
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(
        self, host: str, port: int, address: str, timeout: float, tls: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=tls)
        self._address = address
        self._tls = tls

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


@dataclass(frozen=True)
class OutboundClient:
    allowed: Sequence[Network] = ()
    resolver: Resolver = system_resolver
    timeout: float = 30.0
    max_bytes: int = 64 * 1024 * 1024
    max_redirects: int = 5
    ca_file: Path | None = None
    user_agent: str = "ztsim"
    _tls: list[ssl.SSLContext] = field(default_factory=list, repr=False)

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Response:
        """GET `url`; NotAllowed (netguard) for a refused address on any hop, FetchFailed
        when no HTTP answer came, ValueError for a body over `max_bytes`."""
        for _ in range(self.max_redirects + 1):
            target = parse_target(url)
            address = check_addresses(self.resolver(target.host, target.port), self.allowed)
            response = self._once("GET", target, str(address), headers or {})
            location = response.headers.get("location")
            if response.status in _REDIRECTS and location:
                url = urljoin(url, location)
                continue
            return response
        raise FetchFailed("too many redirects")

    def post(self, url: str, body: bytes, headers: Mapping[str, str] | None = None) -> Response:
        """POST `body` to `url` once, no redirect followed; the same failures as `get`."""
        target = parse_target(url)
        address = check_addresses(self.resolver(target.host, target.port), self.allowed)
        return self._once("POST", target, str(address), headers or {}, body)

    def _once(
        self,
        method: str,
        target: Target,
        address: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
    ) -> Response:
        conn: http.client.HTTPConnection
        if target.scheme == "https":
            conn = _PinnedHTTPS(target.host, target.port, address, self.timeout, self._context())
        else:
            conn = _PinnedHTTP(target.host, target.port, address, self.timeout)
        try:
            sent = {"User-Agent": self.user_agent, **headers}
            conn.request(method, target.path, body=body, headers=sent)
            answer = conn.getresponse()
            got_body = answer.read(self.max_bytes + 1)
            if len(got_body) > self.max_bytes:
                raise ValueError(f"the answer is larger than {self.max_bytes // 2**20} MiB")
            got = {k.lower(): v for k, v in answer.getheaders()}
            return Response(answer.status, got, got_body)
        except (OSError, http.client.HTTPException):
            raise FetchFailed() from None
        finally:
            conn.close()

    def _context(self) -> ssl.SSLContext:
        if not self._tls:
            self._tls.append(ssl.create_default_context(cafile=self.ca_file))
        return self._tls[0]
